// The browser's calls to Vault / OpenBao (SPEC §8): the UI talks to Vault directly, at the
// address gostint's v1/api/vault/info gives (vault_external_addr), so Vault's CORS must
// allow gostint's origin. Tokens stay in this page's memory only.

/** A refusal or failure from Vault, with the HTTP status (0 = unreachable). */
export class VaultError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export class Vault {
  constructor(addr) {
    this.addr = String(addr || "").replace(/\/+$/, "");
  }

  /**
   * One call: method, API path (without /v1/), the token to send (or null), a JSON body,
   * extra headers. Returns the parsed JSON answer ({} when empty).
   */
  async call(method, path, token, body, headers = {}) {
    const h = { ...headers };
    if (token) h["X-Vault-Token"] = token;
    if (body !== undefined && body !== null) h["Content-Type"] = "application/json";
    let resp;
    try {
      resp = await fetch(`${this.addr}/v1/${path}`, {
        method,
        headers: h,
        body: body !== undefined && body !== null ? JSON.stringify(body) : undefined,
        mode: "cors",
        credentials: "omit",
        cache: "no-store",
      });
    } catch (e) {
      throw new VaultError(0, `Vault at ${this.addr} is unreachable from this browser ` +
        "(is it up, and does its CORS configuration allow this page's origin?)");
    }
    const text = await resp.text();
    let json = {};
    if (text) {
      try { json = JSON.parse(text); } catch { json = {}; }
    }
    if (!resp.ok) {
      const errs = Array.isArray(json.errors) && json.errors.length ? json.errors.join("; ") : resp.statusText;
      throw new VaultError(resp.status, `Vault refused ${path} (${resp.status}): ${errs}`);
    }
    return json;
  }
}
