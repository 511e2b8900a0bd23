using System.Numerics;
using System.Runtime.CompilerServices;

namespace AutogradService.Api.Json;

/// <summary>
/// float32 to its shortest round-trip text, byte for byte what <c>float.TryFormat</c> writes (invariant culture,
/// default format), in about half its time: the digits by Ryu (Adams, PLDI 2018: the shortest digit string in the
/// value's rounding interval, the closest one on a tie, halves to even) and .NET's layout around them (fixed notation
/// for decimal exponents from −4 to 8, else d.dddE±XX). JSON answers of float32 tensors are mostly this formatting.
/// Finite values only; the caller writes NaN and the infinities as strings.
/// </summary>
public static class ShortestFloat
{
    /// <summary>Room for the longest text, 15 bytes ("-1.17549435E-38").</summary>
    public const int MaxLength = 16;

    private const int Pow5InvBitCount = 59;
    private const int Pow5BitCount = 61;

    // 5^i and 2^k / 5^i to 61 and 59 significant bits, as Ryu's float tables (computed once, exactly).
    private static readonly ulong[] Pow5Split = Table(48, inverse: false);
    private static readonly ulong[] Pow5InvSplit = Table(32, inverse: true);

    private static ulong[] Table(int count, bool inverse)
    {
        var table = new ulong[count];
        for (int i = 0; i < count; i++)
        {
            var pow = BigInteger.Pow(5, i);
            int bits = (int)pow.GetBitLength();
            table[i] = inverse
                ? (ulong)((BigInteger.One << (bits - 1 + Pow5InvBitCount)) / pow + 1)
                : (ulong)(bits >= Pow5BitCount ? pow >> (bits - Pow5BitCount) : pow << (Pow5BitCount - bits));
        }
        return table;
    }

    /// <summary>Writes <paramref name="value"/> (finite) into <paramref name="destination"/> (at least <see cref="MaxLength"/> bytes); returns the length.</summary>
    public static int Format(float value, Span<byte> destination)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        int at = 0;
        if ((bits >> 31) != 0) destination[at++] = (byte)'-';
        uint mantissa = bits & 0x7F_FFFF, exponent = (bits >> 23) & 0xFF;
        if (mantissa == 0 && exponent == 0)
        {
            destination[at++] = (byte)'0';
            return at;
        }
        var (digits, exp) = Decimal(mantissa, exponent);
        return at + Layout(digits, exp, destination[at..]);
    }

    /// <summary>The shortest decimal <c>digits × 10^exp</c> that reads back as the float (Ryu's f2d).</summary>
    private static (uint Digits, int Exp) Decimal(uint mantissa, uint exponent)
    {
        int e2;
        uint m2;
        if (exponent == 0)
        {
            e2 = 1 - 127 - 23 - 2;
            m2 = mantissa;
        }
        else
        {
            e2 = (int)exponent - 127 - 23 - 2;
            m2 = (1u << 23) | mantissa;
        }
        bool acceptBounds = (m2 & 1) == 0;
        // The interval of decimals that round to this float: (mm, mp) around mv, all times 4 to stay integral.
        uint mv = 4 * m2, mp = 4 * m2 + 2;
        uint mmShift = mantissa != 0 || exponent <= 1 ? 1u : 0u;
        uint mm = 4 * m2 - 1 - mmShift;

        uint vr, vp, vm;
        int e10;
        bool vmIsTrailingZeros = false, vrIsTrailingZeros = false;
        uint lastRemovedDigit = 0;
        if (e2 >= 0)
        {
            int q = Log10Pow2(e2);
            e10 = q;
            int k = Pow5InvBitCount + Pow5Bits(q) - 1;
            int i = -e2 + q + k;
            vr = MulShift(mv, Pow5InvSplit[q], i);
            vp = MulShift(mp, Pow5InvSplit[q], i);
            vm = MulShift(mm, Pow5InvSplit[q], i);
            if (q != 0 && (vp - 1) / 10 <= vm / 10)
            {
                // One removed digit is needed even when the loop below removes none.
                int l = Pow5InvBitCount + Pow5Bits(q - 1) - 1;
                lastRemovedDigit = MulShift(mv, Pow5InvSplit[q - 1], -e2 + q - 1 + l) % 10;
            }
            if (q <= 9)
            {
                // Only one of mp, mv and mm can be a multiple of 5, if any.
                if (mv % 5 == 0) vrIsTrailingZeros = MultipleOfPowerOf5(mv, q);
                else if (acceptBounds) vmIsTrailingZeros = MultipleOfPowerOf5(mm, q);
                else vp -= MultipleOfPowerOf5(mp, q) ? 1u : 0u;
            }
        }
        else
        {
            int q = Log10Pow5(-e2);
            e10 = q + e2;
            int i = -e2 - q;
            int k = Pow5Bits(i) - Pow5BitCount;
            int j = q - k;
            vr = MulShift(mv, Pow5Split[i], j);
            vp = MulShift(mp, Pow5Split[i], j);
            vm = MulShift(mm, Pow5Split[i], j);
            if (q != 0 && (vp - 1) / 10 <= vm / 10)
            {
                j = q - 1 - (Pow5Bits(i + 1) - Pow5BitCount);
                lastRemovedDigit = MulShift(mv, Pow5Split[i + 1], j) % 10;
            }
            if (q <= 1)
            {
                // mv has at least q trailing zero bits here, so vr is a whole number of them.
                vrIsTrailingZeros = true;
                if (acceptBounds) vmIsTrailingZeros = mmShift == 1;
                else vp--;
            }
            else if (q < 31)
            {
                vrIsTrailingZeros = (mv & ((1u << (q - 1)) - 1)) == 0;
            }
        }

        // Remove digits while the interval still holds a shorter decimal; round the last one away.
        int removed = 0;
        uint output;
        if (vmIsTrailingZeros || vrIsTrailingZeros)
        {
            while (vp / 10 > vm / 10)
            {
                vmIsTrailingZeros &= vm % 10 == 0;
                vrIsTrailingZeros &= lastRemovedDigit == 0;
                lastRemovedDigit = vr % 10;
                vr /= 10;
                vp /= 10;
                vm /= 10;
                removed++;
            }
            if (vmIsTrailingZeros)
            {
                while (vm % 10 == 0)
                {
                    vrIsTrailingZeros &= lastRemovedDigit == 0;
                    lastRemovedDigit = vr % 10;
                    vr /= 10;
                    vp /= 10;
                    vm /= 10;
                    removed++;
                }
            }
            if (vrIsTrailingZeros && lastRemovedDigit == 5 && vr % 2 == 0) lastRemovedDigit = 4; // a tie: to even
            output = vr + ((vr == vm && (!acceptBounds || !vmIsTrailingZeros)) || lastRemovedDigit >= 5 ? 1u : 0u);
        }
        else
        {
            while (vp / 10 > vm / 10)
            {
                lastRemovedDigit = vr % 10;
                vr /= 10;
                vp /= 10;
                vm /= 10;
                removed++;
            }
            output = vr + (vr == vm || lastRemovedDigit >= 5 ? 1u : 0u);
        }
        return (output, e10 + removed);
    }

    /// <summary>
    /// .NET's layout of shortest digits: with the decimal point at <c>scale</c> (value = 0.digits × 10^scale), fixed
    /// notation for −3 ≤ scale ≤ 9 (float's nine significant digits), else scientific with a signed two-digit exponent.
    /// </summary>
    private static int Layout(uint digits, int exp, Span<byte> into)
    {
        Span<byte> text = stackalloc byte[10];
        int count = 0;
        for (uint d = digits; d != 0; d /= 10) text[9 - count++] = (byte)('0' + d % 10);
        var s = text[(10 - count)..];
        int scale = exp + count, at = 0;
        if (scale > 9 || scale < -3)
        {
            into[at++] = s[0];
            if (count > 1)
            {
                into[at++] = (byte)'.';
                s[1..].CopyTo(into[at..]);
                at += count - 1;
            }
            int e = scale - 1;
            into[at++] = (byte)'E';
            into[at++] = e < 0 ? (byte)'-' : (byte)'+';
            e = Math.Abs(e);
            into[at++] = (byte)('0' + e / 10);
            into[at++] = (byte)('0' + e % 10);
            return at;
        }
        if (scale <= 0)
        {
            into[at++] = (byte)'0';
            into[at++] = (byte)'.';
            for (int z = 0; z < -scale; z++) into[at++] = (byte)'0';
            s.CopyTo(into[at..]);
            return at + count;
        }
        if (scale < count)
        {
            s[..scale].CopyTo(into);
            into[scale] = (byte)'.';
            s[scale..].CopyTo(into[(scale + 1)..]);
            return count + 1;
        }
        s.CopyTo(into);
        for (at = count; at < scale; at++) into[at] = (byte)'0';
        return at;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint MulShift(uint m, ulong factor, int shift) => (uint)(((UInt128)m * factor) >> shift);

    /// <summary>⌈log2 5^e⌉ (1 for e = 0), exact for the exponents floats reach.</summary>
    private static int Pow5Bits(int e) => (int)(((uint)e * 1217359) >> 19) + 1;

    /// <summary>⌊log10 2^e⌋.</summary>
    private static int Log10Pow2(int e) => (int)(((uint)e * 78913) >> 18);

    /// <summary>⌊log10 5^e⌋.</summary>
    private static int Log10Pow5(int e) => (int)(((uint)e * 732923) >> 20);

    private static bool MultipleOfPowerOf5(uint value, int p)
    {
        int count = 0;
        while (value % 5 == 0 && value != 0)
        {
            value /= 5;
            count++;
        }
        return count >= p;
    }
}
