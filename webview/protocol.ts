import * as z from 'zod/mini';

// The messages between the sidebar webview and the extension, in both
// directions, and the view model the extension renders from. Shared by
// extension/ and webview/ and validated with zod on both sides: a webview is
// a web page, so what it posts is input, and what it receives is checked
// before it is drawn. Each union is discriminated by `type`; handlers switch
// on it exhaustively. Nothing here ever carries a stored secret: a field says
// whether it is set (`set`), never what it holds.

const id = z.string().check(z.minLength(1), z.maxLength(200));
const text = z.string().check(z.maxLength(2000));

// ---- the view model (extension → webview) ----

export const SERVER_STATES = ['ready', 'needs_credentials', 'needs_authorization', 'disabled', 'unavailable'] as const;

export const fieldView = z.readonly(
  z.object({
    name: id,
    label: text,
    description: z.optional(text),
    placeholder: z.optional(text),
    secret: z.boolean(),
    required: z.boolean(),
    /** A value is stored (by the registry, or in this editor's SecretStorage). */
    set: z.boolean(),
    /** The stored value of a field that is not secret, shown back for editing. */
    value: z.optional(text),
  }),
);
export type FieldView = z.infer<typeof fieldView>;

export const identityView = z.readonly(
  z.object({
    id,
    label: text,
    availability: z.enum(['private', 'global']),
    owner: z.enum(['you', 'organization', 'someone else']),
    disabled: z.boolean(),
  }),
);
export type IdentityView = z.infer<typeof identityView>;

export const ACTIONS = ['connect', 'reconnect', 'edit', 'disconnect', 'choose', 'make_global', 'make_private'] as const;

export const serverView = z.readonly(
  z.object({
    gateway: id,
    server: id,
    upstreamName: text,
    description: z.optional(text),
    scheme: z.enum(['per_user', 'shared']),
    storage: z.enum(['registry', 'client']),
    /** How the person connects: a form (fields, a token, a header value), the upstream's OAuth, or nothing to do. */
    input: z.enum(['fields', 'oauth', 'none']),
    state: z.enum(SERVER_STATES),
    reason: z.optional(text),
    fields: z.readonly(z.array(fieldView)),
    identity: z.optional(identityView),
    choices: z.readonly(z.array(identityView)),
    actions: z.readonly(z.array(z.enum(ACTIONS))),
    /** A browser connect is under way; the extension is watching for it to finish. */
    pending: z.boolean(),
  }),
);
export type ServerView = z.infer<typeof serverView>;

export const gatewayView = z.readonly(
  z.object({
    id,
    name: text,
    description: z.optional(text),
    servers: z.readonly(z.array(serverView)),
  }),
);
export type GatewayView = z.infer<typeof gatewayView>;

export const VIEW_STATUSES = ['no_registry', 'signed_out', 'loading', 'ready', 'registry_unreachable', 'session_ended'] as const;

export const viewModel = z.readonly(
  z.object({
    registry: z.optional(text),
    account: z.optional(text),
    status: z.enum(VIEW_STATUSES),
    /** What went wrong, for people (no secrets). */
    message: z.optional(text),
    /** Registry unreachable: the next attempt, epoch milliseconds. */
    retryAt: z.optional(z.number()),
    gateways: z.readonly(z.array(gatewayView)),
  }),
);
export type ViewModel = z.infer<typeof viewModel>;

// ---- extension → webview ----

export const toWebview = z.discriminatedUnion('type', [
  z.readonly(z.object({ type: z.literal('view'), view: viewModel })),
  /** The outcome of one action on one server (a form's save, a disconnect). */
  z.readonly(z.object({ type: z.literal('result'), gateway: id, server: id, ok: z.boolean(), message: text })),
  /** Bring one server into view and open its form ("Keygate: Connect an Identity"). */
  z.readonly(z.object({ type: z.literal('reveal'), gateway: id, server: id })),
]);
export type ToWebview = z.infer<typeof toWebview>;

// ---- webview → extension ----

const target = { gateway: id, server: id };
const values = z.record(z.string().check(z.regex(/^[a-z][a-z0-9_]{0,63}$/)), z.string().check(z.maxLength(8192)));

export const toExtension = z.discriminatedUnion('type', [
  z.readonly(z.object({ type: z.literal('ready') })),
  z.readonly(z.object({ type: z.literal('signIn') })),
  z.readonly(z.object({ type: z.literal('selectRegistry') })),
  z.readonly(z.object({ type: z.literal('refresh') })),
  /** The form's values: only the fields the person typed into (an empty secret keeps what is stored). */
  z.readonly(z.object({ type: z.literal('saveCredentials'), ...target, values, availability: z.enum(['private', 'global']) })),
  /** Open the upstream's sign-in (per-user OAuth) in the browser. */
  z.readonly(z.object({ type: z.literal('connect'), ...target })),
  z.readonly(z.object({ type: z.literal('disconnect'), ...target })),
  z.readonly(z.object({ type: z.literal('chooseIdentity'), ...target, identity: id })),
  z.readonly(z.object({ type: z.literal('setAvailability'), ...target, identity: id, availability: z.enum(['private', 'global']) })),
]);
export type ToExtension = z.infer<typeof toExtension>;

/** Parse a message; undefined (and the reason) when it is not one of ours. */
export function parseMessage<S extends z.ZodMiniType>(schema: S, data: unknown): { ok: true; message: z.infer<S> } | { ok: false; problem: string } {
  const parsed = schema.safeParse(data);
  if (parsed.success) return { ok: true, message: parsed.data };
  const issue = parsed.error.issues[0];
  return { ok: false, problem: `${issue?.path.join('.') || 'message'}: ${issue?.message ?? 'invalid'}` };
}

/** For exhaustive switches: a message type nobody handles is a compile error. */
export function assertNever(value: never): never {
  throw new Error(`unhandled message ${JSON.stringify(value)}`);
}
