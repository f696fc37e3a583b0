// Small helpers shared by the UI's modules. Everything that puts text on the page goes
// through textContent (el(), text nodes): no string from gostint, Vault or a job is ever
// parsed as HTML.

/** Final job statuses (SPEC §5.1). */
export const FINAL = new Set(["success", "failed", "notauthorised", "unknown"]);
/** Every status, in the order the filters show them. */
export const STATUSES = ["queued", "running", "stopping", "success", "failed", "notauthorised", "unknown"];

/**
 * Builds an element: el("a", {href: "#x", class: "y"}, "text", child).
 * Attributes named on* are refused (no inline handlers); strings become text nodes.
 */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) throw new Error("no inline handlers");
    if (k === "class") e.className = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

/** Removes every child of a node. */
export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

/** The API's "unset" time. */
const ZERO_TIME = "0001-01-01T00:00:00Z";

/** Milliseconds since the epoch, or null for an unset time. */
export function timeMs(t) {
  if (!t || t === ZERO_TIME) return null;
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? null : ms;
}

/** A timestamp for people (local time), "" when unset. */
export function fmtTime(t) {
  const ms = timeMs(t);
  if (ms === null) return "";
  const d = new Date(ms);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A duration in seconds for people. */
export function fmtDuration(s) {
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

/** Standard base64 of bytes. */
export function b64Bytes(bytes) {
  let bin = "";
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    bin += String.fromCharCode.apply(null, bytes.subarray(i, i + chunk));
  }
  return btoa(bin);
}

/** Standard base64 of a string's UTF-8 bytes. */
export function b64Utf8(s) {
  return b64Bytes(new TextEncoder().encode(s));
}

/**
 * Splits a command line the way a POSIX shell would split words: blanks separate words,
 * '…' keeps everything literally, "…" keeps blanks and honours \" \\ \$ \`, a backslash
 * outside quotes escapes the next character. Throws on an unterminated quote.
 */
export function shellSplit(line) {
  const words = [];
  let cur = "";
  let inWord = false;
  let i = 0;
  while (i < line.length) {
    const c = line[i];
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error("unterminated ' quote");
      cur += line.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      i++;
      let closed = false;
      while (i < line.length) {
        const d = line[i];
        if (d === '"') { closed = true; i++; break; }
        if (d === "\\" && i + 1 < line.length && '"\\$`\n'.includes(line[i + 1])) {
          cur += line[i + 1];
          i += 2;
          continue;
        }
        cur += d;
        i++;
      }
      if (!closed) throw new Error('unterminated " quote');
      inWord = true;
    } else if (c === "\\") {
      if (i + 1 < line.length) cur += line[i + 1];
      inWord = true;
      i += 2;
    } else if (c === " " || c === "\t" || c === "\n") {
      if (inWord) words.push(cur);
      cur = "";
      inWord = false;
      i++;
    } else {
      cur += c;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(cur);
  return words;
}
