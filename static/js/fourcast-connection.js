// What every transport's connection shares: single use, one "useful" report once it delivers,
// one "drop" report when it ends (see fourcast-transports.js for the host it reports to).

export class BaseConnection {
  constructor(host, { probe = false } = {}) {
    this.host = host;
    this.probe = probe; // auto mode: check harder that the transport really delivers
    this.channels = new Set();
    this.useful = false;
    this.closed = false;
  }

  /** Mark useful (once) and tell the host. */
  _useful() {
    if (this.useful || this.closed) return;
    this.useful = true;
    this.host.connUseful(this);
  }

  /** End this connection (once) and tell the host why. */
  _drop(reason, extra = {}) {
    if (this.closed) return;
    this.closed = true;
    this._teardown();
    this.host.connDropped(this, { useful: this.useful, reason, ...extra });
  }

  /** Close on purpose: no drop report. */
  close() {
    if (this.closed) return;
    this.closed = true;
    this._teardown();
  }

  /** Simulate a network drop: end the connection as if the network had failed. */
  drop() {
    this._drop('connection dropped (simulated)', { simulated: true });
  }

  /** Note a channel to read; false when it was noted already. */
  _track(ch) {
    if (this.channels.has(ch)) return false;
    this.channels.add(ch);
    return true;
  }

  _teardown() {}
}
