import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually } from './code-server.ts';

// A test-only VS Code extension that stands in for a chat model: VS Code only
// calls MCP tools for a language model, and the tests have none. Its palette
// commands use the stable language-model tool API, exactly as chat would:
//
//   "Keygate E2E: List MCP Tools"      vscode.lm.tools tagged "mcp"
//   "Keygate E2E: Call the Echo Tool"  vscode.lm.invokeTool(<the MCP echo tool>, { input: { message } })
//
// Each writes one JSON line to the file named by the `keygateE2e.outputFile`
// setting and shows a notification; `keygateE2e.echoMessage` is the message,
// `keygateE2e.echoTool` the end of the tool's name (default `_echo`; on a
// gateway with several servers, e.g. `personal__echo`).

export const LM_TOOLS_COMMANDS = {
  listTools: 'Keygate E2E: List MCP Tools',
  callEcho: 'Keygate E2E: Call the Echo Tool',
} as const;

const manifest = {
  name: 'keygate-e2e-lm-tools',
  displayName: 'Keygate E2E language-model tools',
  description: 'Test-only: lists and calls MCP tools through vscode.lm, as a chat model would.',
  version: '0.0.1',
  publisher: 'keygate-test',
  license: 'MIT',
  engines: { vscode: '^1.101.0' },
  main: './extension.js',
  activationEvents: [],
  contributes: {
    commands: [
      { command: 'keygateE2e.listTools', title: 'List MCP Tools', category: 'Keygate E2E' },
      { command: 'keygateE2e.callEcho', title: 'Call the Echo Tool', category: 'Keygate E2E' },
    ],
    configuration: {
      title: 'Keygate E2E',
      properties: {
        'keygateE2e.outputFile': { type: 'string', default: '', description: 'Where results are appended, one JSON line each.' },
        'keygateE2e.echoMessage': { type: 'string', default: 'hello', description: 'The message the echo tool is called with.' },
        'keygateE2e.echoTool': { type: 'string', default: '_echo', description: 'The end of the name of the tool to call.' },
      },
    },
  },
};

const source = String.raw`
const vscode = require('vscode');
const fs = require('fs');

function record(kind, value) {
  const file = vscode.workspace.getConfiguration('keygateE2e').get('outputFile');
  if (file) fs.appendFileSync(file, JSON.stringify({ kind, value }) + '\n');
}
const mcpTools = () => vscode.lm.tools.filter((t) => (t.tags || []).includes('mcp'));

exports.activate = (context) => {
  context.subscriptions.push(
    vscode.commands.registerCommand('keygateE2e.listTools', () => {
      const names = mcpTools().map((t) => t.name).sort();
      record('tools', names);
      void vscode.window.showInformationMessage('Keygate E2E: ' + names.length + ' MCP tools: ' + names.join(', '));
    }),
    vscode.commands.registerCommand('keygateE2e.callEcho', async () => {
      const message = vscode.workspace.getConfiguration('keygateE2e').get('echoMessage');
      try {
        const suffix = vscode.workspace.getConfiguration('keygateE2e').get('echoTool') || '_echo';
        const tool = mcpTools().find((t) => t.name.endsWith(suffix));
        if (!tool) throw new Error('no MCP echo tool; MCP tools: ' + mcpTools().map((t) => t.name).join(', '));
        const result = await vscode.lm.invokeTool(tool.name, { input: { message }, toolInvocationToken: undefined });
        const text = result.content.map((part) => (part instanceof vscode.LanguageModelTextPart ? part.value : JSON.stringify(part))).join('');
        record('echo', { tool: tool.name, text });
        void vscode.window.showInformationMessage('Keygate E2E: ' + tool.name + ' returned "' + text + '"');
      } catch (err) {
        record('error', String((err && err.stack) || err));
        void vscode.window.showErrorMessage('Keygate E2E: calling the echo tool failed: ' + err);
      }
    }),
  );
};
`;

const vsce = fileURLToPath(new URL('../../node_modules/@vscode/vsce/vsce', import.meta.url));

/** Writes the extension into `dir` and packages it with vsce; returns the .vsix path. */
export function buildLmToolsExtension(dir: string): string {
  const src = join(dir, 'lm-tools-extension');
  mkdirSync(src, { recursive: true });
  writeFileSync(join(src, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  writeFileSync(join(src, 'extension.js'), source);
  writeFileSync(join(src, 'README.md'), `# ${manifest.displayName}\n\n${manifest.description}\n`);
  const vsix = join(dir, 'keygate-e2e-lm-tools.vsix');
  const packed = spawnSync(process.execPath, [vsce, 'package', '--no-dependencies', '--allow-missing-repository', '--skip-license', '--out', vsix], { cwd: src, encoding: 'utf8' });
  if (packed.status !== 0 || !existsSync(vsix)) throw new Error(`vsce could not package the test extension:\n${packed.stdout}\n${packed.stderr}`);
  return vsix;
}

export interface LmToolsRecord {
  kind: 'tools' | 'echo' | 'error';
  value: any;
}

/** What the extension has written so far. */
export function readLmToolsOutput(file: string): LmToolsRecord[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as LmToolsRecord);
}

/** The outcome ("echo" or "error") of the first echo tool call after the first `skip` records, once the extension has written it. */
export function echoResult(file: string, skip = 0): Promise<LmToolsRecord> {
  return eventually(
    () => {
      const record = readLmToolsOutput(file)
        .slice(skip)
        .find((r) => r.kind === 'echo' || r.kind === 'error');
      if (!record) throw new Error('the test extension has not called the tool yet');
      return record;
    },
    { timeoutMs: 60_000 },
  );
}
