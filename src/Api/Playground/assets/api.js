// The service's REST API as the page uses it: JSON in, JSON out, problem details turned into one error type.

/** A refusal from the service: its problem details, plus the program line and column when the detail names them. */
export class ServiceError extends Error {
  constructor(problem, status) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.problem = problem;
    this.status = status;
    this.code = problem.code || 'http_' + status;
    // Syntax errors say "line L, column C"; planning errors name the program line in `line` ("at program line L").
    const at = /line (\d+), column (\d+)/.exec(this.message);
    const line = at ? Number(at[1]) : Number.isInteger(problem.line) ? problem.line : Number((/at program line (\d+)/.exec(this.message) || [])[1]);
    this.line = line > 0 ? line : null;
    this.column = at ? Number(at[2]) : null;
  }
}

let apiKey = '';
export function setApiKey(key) { apiKey = key.trim(); }

async function call(method, path, body) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (apiKey) headers['x-api-key'] = apiKey;
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let json;
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    json = { detail: text.slice(0, 300) };
  }
  if (!response.ok) throw new ServiceError(json, response.status);
  return json;
}

export const post = (transform, body) => call('POST', `../v1/${transform}`, body);
export const ops = () => call('GET', '../v1/ops');

/** A tensor from the service ({dtype, shape, data}) as plain numbers; NaN and infinities arrive as strings. */
export function numbers(tensor) {
  return tensor.data.map(v => (typeof v === 'string' ? Number(v === 'Infinity' ? Infinity : v === '-Infinity' ? -Infinity : NaN) : typeof v === 'boolean' ? Number(v) : v));
}
