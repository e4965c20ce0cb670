// The admin console's chart (chart.js 4, loaded before this file): calls and
// refusals per gateway over time, from the data the server put on the canvas.
// The page says the same in text (the summary and the table inside the
// canvas), so nothing is lost without JavaScript.
'use strict';
(function () {
  const canvas = document.getElementById('audit-chart');
  if (!canvas || typeof Chart === 'undefined') return;
  const data = JSON.parse(canvas.dataset.chart || '{"labels":[],"series":[]}');
  const css = getComputedStyle(document.documentElement);
  const fg = css.getPropertyValue('--fg').trim();
  const line = css.getPropertyValue('--line').trim();
  const palette = ['#0969da', '#bf3989', '#1a7f37', '#9a6700', '#8250df', '#0e8a8a'];
  const datasets = data.series.map((s, i) => {
    const color = palette[Math.floor(i / 2) % palette.length];
    return { label: s.label, data: s.values, borderColor: color, backgroundColor: color, borderDash: s.kind === 'refusals' ? [6, 4] : [], pointRadius: 2, tension: 0.2 };
  });
  Chart.defaults.color = fg;
  Chart.defaults.borderColor = line;
  new Chart(canvas, {
    type: 'line',
    data: { labels: data.labels, datasets },
    options: { responsive: true, maintainAspectRatio: false, animation: false, interaction: { mode: 'index', intersect: false }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } }, plugins: { legend: { position: 'bottom' } } },
  });
})();
