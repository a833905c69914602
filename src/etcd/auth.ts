/**
 * User/password authentication: etcd trades them for a token (POST /v3/auth/authenticate) that
 * every later call carries in its Authorization header. The token is replicated through raft, so
 * one token serves every member; it expires when idle (etcd's --auth-token-ttl), and a call that
 * is refused for its token logs in again once.
 */
import { classify, GRPC, type Outcome } from './answer.js';

export interface EtcdCredentials {
  user: string;
  password: string;
}

export type Send = (path: string, body: object, token: string | undefined) => Promise<Outcome>;

/** A login that etcd refused (the outcome says why). */
export class LoginRefused extends Error {
  constructor(readonly outcome: Extract<Outcome, { ok: false }>) {
    super(`etcd refused the login: ${outcome.error}`);
  }
}

export class TokenHolder {
  /** undefined: not logged in yet; '': the cluster needs none. */
  private held: string | undefined;
  private login: Promise<Outcome> | undefined;

  constructor(private readonly credentials: EtcdCredentials | undefined) {
    if (!credentials) this.held = '';
  }

  /** The token to send (logging in first when there is none). Throws LoginRefused, or what `send` throws. */
  async token(send: Send): Promise<string | undefined> {
    if (this.held === undefined) await this.logIn(send);
    return this.held || undefined;
  }

  /** etcd refused the token: the next call logs in again. */
  forget(): void {
    if (this.credentials) this.held = undefined;
  }

  /** Sends `body` with the token, and once more with a fresh one when etcd refuses the token. */
  async send(send: Send, path: string, body: object): Promise<Outcome> {
    for (let fresh = false; ; fresh = true) {
      const outcome = await send(path, body, await this.token(send));
      if (outcome.ok || classify(outcome.grpcCode, outcome.error) !== 'token' || fresh || !this.credentials) return outcome;
      this.forget();
    }
  }

  private async logIn(send: Send): Promise<void> {
    const { user, password } = this.credentials!;
    // Concurrent calls share one login.
    this.login ??= send('/v3/auth/authenticate', { name: user, password }, undefined);
    try {
      const outcome = await this.login;
      if (outcome.ok) this.held = typeof outcome.message.token === 'string' ? outcome.message.token : '';
      else if (outcome.grpcCode === GRPC.FailedPrecondition && /authentication is not enabled/.test(outcome.error)) this.held = '';
      else throw new LoginRefused(outcome);
    } finally {
      this.login = undefined;
    }
  }
}
