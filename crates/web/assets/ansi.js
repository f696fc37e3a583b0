// ANSI colour sequences (SGR) in job output → DOM nodes. Text only ever becomes text nodes,
// so output is shown exactly as written, never interpreted as HTML. Cursor movements and
// other control sequences are dropped; a bare \r (progress bars) keeps the line's last
// rewrite.

const ESC_RE = /\x1b\[([0-9;:?]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[()][0-9A-Za-z]|\x1b[=>78DEHMc]/g;

function xterm256(n) {
  if (n < 16) return null;
  if (n >= 232) {
    const v = 8 + (n - 232) * 10;
    return `rgb(${v}, ${v}, ${v})`;
  }
  const i = n - 16;
  const step = (x) => (x === 0 ? 0 : 55 + x * 40);
  return `rgb(${step(Math.floor(i / 36))}, ${step(Math.floor(i / 6) % 6)}, ${step(i % 6)})`;
}

function applySgr(state, params) {
  const p = params === "" ? [0] : params.split(/[;:]/).map((x) => (x === "" ? 0 : Number(x)));
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === 0) Object.assign(state, { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false, inverse: false });
    else if (c === 1) state.bold = true;
    else if (c === 2) state.dim = true;
    else if (c === 3) state.italic = true;
    else if (c === 4) state.underline = true;
    else if (c === 7) state.inverse = true;
    else if (c === 22) { state.bold = false; state.dim = false; }
    else if (c === 23) state.italic = false;
    else if (c === 24) state.underline = false;
    else if (c === 27) state.inverse = false;
    else if (c >= 30 && c <= 37) state.fg = c - 30;
    else if (c >= 90 && c <= 97) state.fg = c - 90 + 8;
    else if (c === 39) state.fg = null;
    else if (c >= 40 && c <= 47) state.bg = c - 40;
    else if (c >= 100 && c <= 107) state.bg = c - 100 + 8;
    else if (c === 49) state.bg = null;
    else if (c === 38 || c === 48) {
      let colour = null;
      if (p[i + 1] === 5 && i + 2 < p.length) {
        const n = p[i + 2] & 255;
        colour = n < 16 ? n : xterm256(n);
        i += 2;
      } else if (p[i + 1] === 2 && i + 4 < p.length) {
        colour = `rgb(${p[i + 2] & 255}, ${p[i + 3] & 255}, ${p[i + 4] & 255})`;
        i += 4;
      }
      if (c === 38) state.fg = colour; else state.bg = colour;
    }
  }
}

function span(state, text) {
  const plain = state.fg === null && state.bg === null && !state.bold && !state.dim &&
    !state.italic && !state.underline && !state.inverse;
  if (plain) return document.createTextNode(text);
  const s = document.createElement("span");
  s.textContent = text;
  const cls = [];
  const [fg, bg] = state.inverse ? [state.bg, state.fg] : [state.fg, state.bg];
  if (typeof fg === "number") cls.push(`ansi-fg-${fg}`);
  else if (fg) s.style.color = fg;
  if (typeof bg === "number") cls.push(`ansi-bg-${bg}`);
  else if (bg) s.style.backgroundColor = bg;
  if (state.inverse && fg === null) cls.push("ansi-inverse-fg");
  if (state.inverse && bg === null) cls.push("ansi-inverse-bg");
  if (state.bold) cls.push("ansi-bold");
  if (state.dim) cls.push("ansi-dim");
  if (state.italic) cls.push("ansi-italic");
  if (state.underline) cls.push("ansi-underline");
  s.className = cls.join(" ");
  return s;
}

/** Drops what a bare carriage return overwrote, line by line. */
function carriageReturns(text) {
  if (!text.includes("\r")) return text;
  return text.replace(/\r\n/g, "\n").split("\n").map((line) => {
    if (!line.includes("\r")) return line;
    const parts = line.split("\r").filter((x) => x !== "");
    return parts.length ? parts[parts.length - 1] : "";
  }).join("\n");
}

/** A DocumentFragment showing `text` with its ANSI colours. */
export function ansiToFragment(text) {
  const frag = document.createDocumentFragment();
  const state = { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false, inverse: false };
  const src = carriageReturns(String(text || ""));
  let last = 0;
  ESC_RE.lastIndex = 0;
  let m;
  while ((m = ESC_RE.exec(src)) !== null) {
    if (m.index > last) frag.append(span(state, src.slice(last, m.index)));
    if (m[2] === "m") applySgr(state, m[1] || "");
    last = ESC_RE.lastIndex;
  }
  if (last < src.length) frag.append(span(state, src.slice(last)));
  return frag;
}
