// The chapter's cases (shared spec d2l-cases.md), each as what the page loads: program, inputs, transform and
// extra request fields, with the numbers to expect.

const f64 = data => ({ dtype: 'float64', shape: [data.length], data });
const E6_PROGRAM = 'f = log(x**2) * sin(x) + 1/x';
const E6_X = f64([0.5, 1, 2, -1.5]);

/** C5 as a graph: the loop and the branch are `while` and `if` nodes with subgraphs (what the JSON form offers today). */
function c5Graph(shape) {
  return {
    inputs: [{ name: 'a', dtype: 'float32', shape }],
    nodes: [
      { op: 'mul', inputs: [2.0, 'a'], outputs: ['b0'] },
      {
        op: 'while', name: 'loop', inputs: ['b0'], outputs: ['b'],
        attrs: {
          cond: { inputs: [{ name: 'b' }], nodes: [{ op: 'norm', inputs: ['b'], outputs: ['n'] }, { op: 'lt', inputs: ['n', 1000.0], outputs: ['go'] }], outputs: ['go'] },
          body: { inputs: [{ name: 'b' }], nodes: [{ op: 'mul', inputs: [2.0, 'b'], outputs: ['b2'] }], outputs: ['b2'] },
          max_iterations: 100,
        },
      },
      { op: 'sum', inputs: ['b'], outputs: ['s'] },
      { op: 'gt', inputs: ['s', 0.0], outputs: ['positive'] },
      {
        op: 'if', name: 'choose', inputs: ['positive', 'b'], outputs: ['c'],
        attrs: {
          then: { inputs: [{ name: 'b' }], nodes: [], outputs: ['b'] },
          else: { inputs: [{ name: 'b' }], nodes: [{ op: 'mul', inputs: [100.0, 'b'], outputs: ['scaled'] }], outputs: ['scaled'] },
        },
      },
    ],
    outputs: ['c'],
  };
}

export const CASES = [
  {
    id: 'C1', title: 'C1 — y = 2·dot(x, x)', transform: 'gradient',
    program: 't = dot(x, x)\ny = 2 * t', inputs: { x: [0, 1, 2, 3] },
    note: 'Expect y = 28 and dy/dx = 4x = [0, 4, 8, 12].',
  },
  {
    id: 'C2', title: 'C2 — then y = sum(x)', transform: 'gradient',
    program: 'y = sum(x)', inputs: { x: [0, 1, 2, 3] },
    note: 'Every stateless call starts fresh (overwrite semantics): [1, 1, 1, 1]. Accumulation ([1, 5, 9, 13]) is a session option.',
  },
  {
    id: 'C3', title: 'C3 — non-scalar output with a seed', transform: 'gradient',
    program: 'y = x * x', inputs: { x: [0, 1, 2, 3] }, extra: { seeds: { y: [1, 1, 1, 1] } },
    note: 'vᵀ·dy/dx with v = ones: 2x = [0, 2, 4, 6]. Without a seed the service uses the sum convention and gives the same.',
  },
  {
    id: 'C4', title: 'C4 — detach', transform: 'gradient',
    program: 'y = x * x\nu = detach(y)\nz = u * x\ns = sum(z)', inputs: { x: [0, 1, 2, 3] },
    note: 'u is a constant to the gradient: d sum(u·x)/dx = u = [0, 1, 4, 9], not 3x².',
  },
  {
    id: 'C5', title: 'C5 — loop and branch (graph)', transform: 'gradient',
    graph: c5Graph([]), inputs: { a: 0.5 },
    note: 'a = 0.5: c = 1024, dc/da = 2048 (= c/a). Try a = -0.3 (409600) or 1.7 (1024). The branch taken is highlighted.',
  },
  {
    id: 'E1', title: 'E1 — second derivative (float64)', transform: 'hessian',
    program: E6_PROGRAM + '\ns = sum(f)', inputs: { x: E6_X },
    note: "The Hessian of sum(f) is diagonal with f'' = [19.84988110703323, 2.4782672538567656, -2.2974962818963944, 0.9143359051031112].",
  },
  {
    id: 'E2', title: 'E2 — backward twice (sessions)', transform: 'gradient',
    program: 't = dot(x, x)\ny = 2 * t', inputs: { x: [0, 1, 2, 3] },
    note: 'Each stateless call records and frees its own graph. Backward twice on one recorded graph (and retain_graph) is a session matter: see README, "C5 — the loop and the branch run in the client\'s own code".',
  },
  {
    id: 'E3', title: 'E3 — C5 with a vector a: Jacobian', transform: 'jacobian',
    graph: c5Graph([3]), inputs: { a: [0.3, -0.2, 0.1] },
    note: 'c = [1228.8, -819.2, 409.6]; the Jacobian is 4096·I.',
  },
  {
    id: 'E4', title: "E4 — plot sin and its derivative", transform: 'gradient', plot: true,
    program: 'y = sin(x)', inputs: { x: [0, 1.5707964, 3.1415927] },
    note: "Plot draws sin on [-2π, 2π] with its derivative from the service (no cos anywhere): f' equals cos(x) to float32 rounding.",
  },
  {
    id: 'E5', title: 'E5 — the dependency graph', transform: 'gradient',
    program: E6_PROGRAM, inputs: { x: E6_X },
    note: 'Nodes: pow, log, sin, mul, div, add. Run for values and adjoints on every node.',
  },
  {
    id: 'E6', title: 'E6 — chain-rule terms (float64)', transform: 'gradient',
    program: 's = square(x)\nl = log(s)\nn = sin(x)\np = l * n\nr = 1 / x\nf = p + r', inputs: { x: E6_X },
    note: "f = [1.335375079256127, 1, 1.7605538953892688, -1.4755654918281964], f' = [-3.2988856025489586, 0.682941969615793, 0.08239541392249738, 0.9429118052705564]; each node shows its value and adjoint.",
  },
  {
    id: 'E7', title: 'E7 — forward mode (JVP)', transform: 'jvp',
    program: E6_PROGRAM, inputs: { x: E6_X }, extra: { tangents: { x: f64([1, 1, 1, 1]) } },
    note: "The JVP with tangent ones gives the same f' as the gradient (E6).",
  },
  {
    id: 'E8', title: 'E8 — which mode when', transform: 'jacobian',
    program: 'y = A @ x', inputs: { A: [[1, 2, 3, 4], [5, 6, 7, 8]], x: [1, 1, 1, 1] }, wrt: 'x', extra: { mode: 'auto' },
    note: 'R⁴ → R²: reverse mode needs 2 passes, forward 4, so auto picks reverse (see mode_used).',
  },
];
