namespace AutogradService.Tests.Shared;

/// <summary>
/// The chapter's four <c>f(a)</c> cells (seed, the control-flow section: MXNet, PyTorch, TensorFlow, JAX), character
/// for character as the seed has them: programs must run them with no edit (d2l-cases.md, C5). Compiled into the
/// engine and Api test projects.
/// </summary>
internal static class SeedCells
{
    public const string MxNet = """
        def f(a):
            b = a * 2
            while np.linalg.norm(b) < 1000:
                b = b * 2
            if b.sum() > 0:
                c = b
            else:
                c = 100 * b
            return c
        """;

    public const string PyTorch = """
        def f(a):
            b = a * 2
            while b.norm() < 1000:
                b = b * 2
            if b.sum() > 0:
                c = b
            else:
                c = 100 * b
            return c
        """;

    public const string TensorFlow = """
        def f(a):
            b = a * 2
            while tf.norm(b) < 1000:
                b = b * 2
            if tf.reduce_sum(b) > 0:
                c = b
            else:
                c = 100 * b
            return c
        """;

    public const string Jax = """
        def f(a):
            b = a * 2
            while jnp.linalg.norm(b) < 1000:
                b = b * 2
            if b.sum() > 0:
                c = b
            else:
                c = 100 * b
            return c
        """;

    public static readonly string[] All = [MxNet, PyTorch, TensorFlow, Jax];

    /// <summary>Each cell with C5's three scalar cases: a, c = f(a), and dc/da (= c / a), as test rows.</summary>
    public static IEnumerable<object[]> WithCases()
    {
        foreach (var cell in All)
        {
            yield return [cell, 0.5, 1024.0, 2048.0];
            yield return [cell, -0.3, -122880.0078, 409600.0];
            yield return [cell, 1.7, 1740.8, 1024.0];
        }
    }
}
