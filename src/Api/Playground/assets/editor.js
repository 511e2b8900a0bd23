// The program editor: a textarea over a highlighted copy of its text, a line-number gutter, and the service's
// syntax errors marked at their line and column.

/** Python-shaped keywords, for the control-flow syntax (def/while/if) as well as today's straight-line programs. */
export const KEYWORDS = new Set(['def', 'return', 'while', 'if', 'elif', 'else', 'and', 'or', 'not', 'for', 'in', 'pass', 'break', 'continue', 'import', 'from', 'as']);
const CONSTANTS = new Set(['true', 'false', 'True', 'False', 'None']);

/** Framework spellings the program language maps to registered ops (docs: "Framework spellings"); not in /v1/ops. */
const SPELLINGS = ['reduce_sum', 'reduce_mean', 'reduce_max', 'amax', 'reduce_min', 'amin', 'reduce_prod', 'multiply',
  'subtract', 'divide', 'negative', 'power', 'absolute', 'greater', 'greater_equal', 'less', 'less_equal', 'equal',
  'not_equal', 'cat', 'concatenate', 'expand_dims', 'mm', 'bmm', 'mv', 'inner', 'vdot', 'tensordot', 'stop_gradient',
  'clone', 'item'];

// One regular expression, one alternative per token class, tried left to right.
const TOKEN = /(#.*)|("(?:[^"\\]|\\.)*"?|'(?:[^'\\]|\\.)*'?)|(\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|(\*\*|==|!=|<=|>=|[-+*/@<>=%])|([()[\],:])|(\s+)|(.)/g;

const escapeHtml = s => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Token spans of one line: [{text, kind}], kind being a CSS class ("kw", "op-name", "num", ...) or "" for plain. */
export function tokenize(line, knownOps) {
  const out = [];
  let depth = 0;
  let m;
  TOKEN.lastIndex = 0;
  while ((m = TOKEN.exec(line)) !== null) {
    const text = m[0];
    let kind = '';
    if (m[1] !== undefined) kind = 'comment';
    else if (m[2] !== undefined) kind = 'str';
    else if (m[3] !== undefined) kind = 'num';
    else if (m[4] !== undefined) {
      const rest = line.slice(TOKEN.lastIndex);
      const previous = out.filter(t => t.kind !== 'ws').pop();
      if (KEYWORDS.has(text)) kind = 'kw';
      else if (previous && previous.kind === 'kw' && previous.text === 'def') kind = 'def-name';
      else if (CONSTANTS.has(text)) kind = 'const';
      // A method or a module-qualified call (b.norm(), np.linalg.norm(b)) is the language's to resolve, not flagged here.
      else if (/^\s*\(/.test(rest)) kind = !knownOps || knownOps.has(text) ? 'op-name' : previous && previous.text === '.' ? 'call' : 'unknown-op';
      else if (depth > 0 && /^\s*=(?!=)/.test(rest)) kind = 'attr';
      else if (depth === 0 && out.every(t => t.kind === 'ws' || t.kind === 'kw') && /^\s*=(?!=)/.test(rest)) kind = 'target';
      else kind = 'name';
    } else if (m[5] !== undefined) kind = 'operator';
    else if (m[6] !== undefined) {
      kind = 'punct';
      if (text === '(' || text === '[') depth++;
      else if (text === ')' || text === ']') depth = Math.max(0, depth - 1);
    } else if (m[7] !== undefined) kind = 'ws';
    out.push({ text, kind });
  }
  return out;
}

/** The highlighted HTML of a whole text: one <span class="line"> per line, error line and column marked. */
export function highlight(text, knownOps, error) {
  const lines = text.split('\n');
  // Functions the program defines itself are known calls too.
  const defined = [...text.matchAll(/^\s*def\s+([A-Za-z_][A-Za-z0-9_]*)/gm)].map(m => m[1]);
  if (knownOps && defined.length) knownOps = new Set([...knownOps, ...defined]);
  return lines.map((line, i) => {
    const number = i + 1;
    const isError = error && error.line === number;
    let column = 1;
    const spans = tokenize(line, knownOps).map(t => {
      const start = column;
      column += t.text.length;
      const here = isError && error.column !== null && error.column >= start && error.column < column;
      const classes = [t.kind && t.kind !== 'ws' ? 'tok-' + t.kind : '', here ? 'error-at' : ''].filter(Boolean).join(' ');
      return classes ? `<span class="${classes}">${escapeHtml(t.text)}</span>` : escapeHtml(t.text);
    }).join('');
    // An error past the line's end (e.g. "expected ')'") still gets a visible mark.
    const tail = isError && error.column !== null && error.column >= column ? '<span class="error-at error-eol"> </span>' : '';
    return `<span class="line${isError ? ' error' : ''}" data-line="${number}">${spans}${tail}</span>`;
  }).join('\n') + '\n';
}

export class Editor {
  constructor({ source, highlight: layer, gutter, root }) {
    this.source = source;
    this.layer = layer;
    this.gutter = gutter;
    this.root = root;
    this.knownOps = null;
    this.error = null;
    source.addEventListener('input', () => { this.error = null; this.render(); });
    source.addEventListener('scroll', () => this.syncScroll());
    source.addEventListener('keydown', e => {
      if (e.ctrlKey || e.altKey || e.metaKey) return;
      // Tab indents (control-flow bodies) instead of leaving the editor.
      if (e.key === 'Tab') {
        e.preventDefault();
        this.insert('    ');
      } else if (e.key === 'Enter') {
        // A new line keeps the indentation, one level deeper after a line ending in ':' (def, while, if, else).
        e.preventDefault();
        const { selectionStart: s, value } = source;
        const line = value.slice(value.lastIndexOf('\n', s - 1) + 1, s);
        const indent = /^\s*/.exec(line)[0] + (/:\s*(#.*)?$/.test(line) ? '    ' : '');
        this.insert('\n' + indent);
      }
    });
    this.render();
  }

  get text() { return this.source.value; }

  /** Replaces the selection with text, as typing would (the input event re-highlights). */
  insert(text) {
    const { selectionStart: s, selectionEnd: end, value } = this.source;
    this.source.value = value.slice(0, s) + text + value.slice(end);
    this.source.selectionStart = this.source.selectionEnd = s + text.length;
    this.source.dispatchEvent(new Event('input'));
  }

  set text(value) {
    this.source.value = value;
    this.error = null;
    this.render();
  }

  setKnownOps(names) {
    this.knownOps = new Set([...names, ...SPELLINGS]);
    this.render();
  }

  /** Marks {line, column} (1-based, as the service reports them), or clears the mark with null. */
  showError(error) {
    this.error = error && error.line ? { line: error.line, column: error.column || null } : null;
    this.render();
  }

  render() {
    const text = this.source.value;
    // JSON graphs are not program text: keep them plain rather than mislabel their keys as unknown ops.
    const isJson = text.trimStart().startsWith('{');
    this.layer.innerHTML = isJson ? escapeHtml(text) + '\n' : highlight(text, this.knownOps, this.error);
    const count = text.split('\n').length;
    this.gutter.innerHTML = Array.from({ length: count }, (_, i) =>
      `<span class="${this.error && this.error.line === i + 1 ? 'error' : ''}" data-line="${i + 1}">${i + 1}</span>`).join('\n') + '\n';
    if (this.error) this.root.dataset.errorLine = String(this.error.line);
    else delete this.root.dataset.errorLine;
    this.syncScroll();
  }

  syncScroll() {
    this.layer.scrollTop = this.source.scrollTop;
    this.layer.scrollLeft = this.source.scrollLeft;
    this.gutter.scrollTop = this.source.scrollTop;
  }
}
