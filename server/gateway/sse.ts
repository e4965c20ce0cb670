// Server-sent events (WHATWG HTML §9.2 "Server-sent events", the event
// stream format), parsed incrementally: MCP's Streamable HTTP answers a POST
// or a GET with a stream of `event: message` / `id:` / `data:` blocks, each
// carrying one JSON-RPC message.

export interface SseEvent {
  id: string | undefined;
  event: string;
  data: string;
  retry: number | undefined;
}

export class SseParser {
  private buffer = '';
  private id: string | undefined;
  private event = '';
  private data: string[] = [];
  private retry: number | undefined;
  private sawField = false;

  /** Feed a chunk; returns the events it completed. */
  push(chunk: string): SseEvent[] {
    this.buffer += chunk;
    const out: SseEvent[] = [];
    let start = 0;
    for (;;) {
      const nl = this.buffer.indexOf('\n', start);
      if (nl < 0) break;
      let line = this.buffer.slice(start, nl);
      start = nl + 1;
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '') {
        if (this.sawField) out.push({ id: this.id, event: this.event || 'message', data: this.data.join('\n'), retry: this.retry });
        this.event = '';
        this.data = [];
        this.retry = undefined;
        this.sawField = false;
        continue;
      }
      if (line.startsWith(':')) continue; // a comment (keep-alive)
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      this.sawField = true;
      if (field === 'data') this.data.push(value);
      else if (field === 'event') this.event = value;
      else if (field === 'id') this.id = value.includes('\0') ? this.id : value;
      else if (field === 'retry' && /^\d+$/.test(value)) this.retry = Number(value);
    }
    this.buffer = this.buffer.slice(start);
    return out;
  }

  /** The id of the last event seen (for Last-Event-ID). */
  get lastEventId(): string | undefined {
    return this.id;
  }
}

/** One SSE event carrying a JSON-RPC message. */
export function sseMessage(message: unknown, id?: string): string {
  return `event: message\n${id === undefined ? '' : `id: ${id}\n`}data: ${JSON.stringify(message)}\n\n`;
}
