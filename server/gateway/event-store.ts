import type { EventStore, JSONRPCMessage } from '@modelcontextprotocol/server';

// Resumable streams for 2025 sessions on /mcp/{gateway} (Streamable HTTP,
// "Resumability and Redelivery"): every event the gateway sends on a session
// gets an id; a client whose stream broke reconnects with Last-Event-ID and
// gets what it missed. One store per session, bounded, in memory.

const MAX_EVENTS = 500;

export class SessionEventStore implements EventStore {
  private readonly events: { id: string; stream: string; message: JSONRPCMessage }[] = [];
  private next = 1;

  async storeEvent(streamId: string, message: JSONRPCMessage): Promise<string> {
    const id = `${streamId}_${this.next++}`;
    this.events.push({ id, stream: streamId, message });
    if (this.events.length > MAX_EVENTS) this.events.splice(0, this.events.length - MAX_EVENTS);
    return id;
  }

  async getStreamIdForEventId(eventId: string): Promise<string | undefined> {
    return this.events.find((e) => e.id === eventId)?.stream;
  }

  async replayEventsAfter(lastEventId: string, { send }: { send: (eventId: string, message: JSONRPCMessage) => Promise<void> }): Promise<string> {
    const at = this.events.findIndex((e) => e.id === lastEventId);
    if (at < 0) return '';
    const stream = this.events[at]!.stream;
    for (const e of this.events.slice(at + 1)) if (e.stream === stream) await send(e.id, e.message);
    return stream;
  }
}
