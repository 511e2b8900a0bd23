// A line plot drawn as SVG: several series over one x grid, axes with ticks, and a crosshair with the values of
// every series at the point nearest the pointer.

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 720, HEIGHT = 360;
const MARGIN = { left: 52, right: 16, top: 14, bottom: 30 };

function el(name, attrs = {}, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (parent) parent.appendChild(node);
  return node;
}

/** About five round tick values covering [lo, hi]. */
export function ticks(lo, hi, count = 6) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const step10 = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map(m => m * step10).find(s => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

const fmt = v => (Number.isFinite(v) ? (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(3) : String(Number(v.toPrecision(6)))) : String(v));

/**
 * Draws series [{name, values, cssClass}] over xs into container; readout shows the values at the hovered point.
 * The SVG's data-points says how many points it holds; the numbers themselves are the caller's (window.playground.plot).
 */
export function drawPlot(container, readout, xs, series) {
  container.replaceChildren();
  readout.textContent = '';
  const all = series.flatMap(s => s.values).filter(Number.isFinite);
  let lo = Math.min(...all), hi = Math.max(...all);
  if (!(hi > lo)) { lo -= 1; hi += 1; }
  const pad = (hi - lo) * 0.05;
  lo -= pad; hi += pad;
  const x0 = xs[0], x1 = xs[xs.length - 1];
  const sx = x => MARGIN.left + ((x - x0) / (x1 - x0 || 1)) * (WIDTH - MARGIN.left - MARGIN.right);
  const sy = y => MARGIN.top + ((hi - y) / (hi - lo)) * (HEIGHT - MARGIN.top - MARGIN.bottom);

  const svg = el('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', 'aria-label': series.map(s => s.name).join(', ') + ' plotted', class: 'plot-svg' }, container);
  svg.dataset.points = String(xs.length);
  const axes = el('g', { class: 'axes' }, svg);
  for (const t of ticks(x0, x1)) {
    el('line', { x1: sx(t), x2: sx(t), y1: MARGIN.top, y2: HEIGHT - MARGIN.bottom, class: 'grid' }, axes);
    el('text', { x: sx(t), y: HEIGHT - MARGIN.bottom + 16, 'text-anchor': 'middle' }, axes).textContent = fmt(t);
  }
  for (const t of ticks(lo, hi)) {
    el('line', { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: sy(t), y2: sy(t), class: t === 0 ? 'grid zero' : 'grid' }, axes);
    el('text', { x: MARGIN.left - 6, y: sy(t) + 4, 'text-anchor': 'end' }, axes).textContent = fmt(t);
  }
  el('rect', { x: MARGIN.left, y: MARGIN.top, width: WIDTH - MARGIN.left - MARGIN.right, height: HEIGHT - MARGIN.top - MARGIN.bottom, class: 'frame' }, axes);

  for (const s of series) {
    // A non-finite value breaks the line instead of dragging it to the edge.
    let d = '', pen = false;
    s.values.forEach((v, i) => {
      if (!Number.isFinite(v)) { pen = false; return; }
      d += `${pen ? 'L' : 'M'}${sx(xs[i]).toFixed(2)},${sy(v).toFixed(2)}`;
      pen = true;
    });
    el('path', { d, class: 'series ' + s.cssClass, 'data-series': s.name }, svg);
  }

  const legend = el('g', { class: 'legend' }, svg);
  el('rect', { x: MARGIN.left + 4, y: MARGIN.top + 2, width: 62, height: 8 + series.length * 16, class: 'legend-box' }, legend);
  series.forEach((s, i) => {
    const y = MARGIN.top + 14 + i * 16;
    el('line', { x1: MARGIN.left + 10, x2: MARGIN.left + 30, y1: y - 4, y2: y - 4, class: 'series ' + s.cssClass }, legend);
    el('text', { x: MARGIN.left + 36, y }, legend).textContent = s.name;
  });

  const cross = el('g', { class: 'crosshair', visibility: 'hidden' }, svg);
  const vline = el('line', { y1: MARGIN.top, y2: HEIGHT - MARGIN.bottom }, cross);
  const dots = series.map(s => el('circle', { r: 3.5, class: 'dot ' + s.cssClass }, cross));
  const hit = el('rect', { x: MARGIN.left, y: MARGIN.top, width: WIDTH - MARGIN.left - MARGIN.right, height: HEIGHT - MARGIN.top - MARGIN.bottom, class: 'hit' }, svg);

  const show = clientX => {
    const box = svg.getBoundingClientRect();
    const x = x0 + ((clientX - box.left) / box.width * WIDTH - MARGIN.left) / (WIDTH - MARGIN.left - MARGIN.right) * (x1 - x0);
    // The grid is sorted: the nearest point by binary search.
    let a = 0, b = xs.length - 1;
    while (b - a > 1) { const m = (a + b) >> 1; if (xs[m] < x) a = m; else b = m; }
    const i = Math.abs(xs[a] - x) <= Math.abs(xs[b] - x) ? a : b;
    cross.setAttribute('visibility', 'visible');
    vline.setAttribute('x1', sx(xs[i]));
    vline.setAttribute('x2', sx(xs[i]));
    series.forEach((s, k) => {
      const v = s.values[i];
      dots[k].setAttribute('visibility', Number.isFinite(v) ? 'visible' : 'hidden');
      if (Number.isFinite(v)) { dots[k].setAttribute('cx', sx(xs[i])); dots[k].setAttribute('cy', sy(v)); }
    });
    readout.dataset.index = String(i);
    readout.textContent = `x = ${fmt(xs[i])}   ` + series.map(s => `${s.name} = ${fmt(s.values[i])}`).join('   ');
  };
  hit.addEventListener('pointermove', e => show(e.clientX));
  hit.addEventListener('pointerleave', () => cross.setAttribute('visibility', 'hidden'));
  return svg;
}
