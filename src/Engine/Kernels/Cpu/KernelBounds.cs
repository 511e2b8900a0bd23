namespace AutogradService.Engine.Kernels.Cpu;

/// <summary>
/// Kernels that walk native pointers check at their entry, once per call and in O(rank), that every element they
/// will touch lies inside the buffers they were given. Shape rules already guarantee it, so a failure here is an
/// engine bug: it is reported as an internal error instead of becoming a read or write out of bounds (which could
/// crash the process or hand one request another's bytes).
/// </summary>
internal static class KernelBounds
{
    /// <summary>
    /// A strided walk over <paramref name="dims"/> from element <paramref name="start"/> must stay in [0, count).
    /// Strides may be negative; an empty walk touches nothing.
    /// </summary>
    public static void Strided(long start, ReadOnlySpan<long> strides, ReadOnlySpan<int> dims, long count, string what)
    {
        long low = start, high = start;
        try
        {
            for (int i = 0; i < dims.Length; i++)
            {
                if (dims[i] == 0) return;
                long reach = checked((dims[i] - 1) * strides[i]);
                if (reach < 0) low = checked(low + reach);
                else high = checked(high + reach);
            }
        }
        catch (OverflowException)
        {
            throw Violated($"{what}: a stride overflows");
        }
        if (low < 0 || high >= count) throw Violated($"{what} would touch elements {low} to {high} of a buffer of {count}");
    }

    /// <summary>Fails unless <paramref name="holds"/>; <paramref name="what"/> says which size rule broke.</summary>
    public static void Require(bool holds, string what)
    {
        if (!holds) throw Violated(what);
    }

    private static InvalidOperationException Violated(string what) => new($"kernel bounds check failed: {what}");
}
