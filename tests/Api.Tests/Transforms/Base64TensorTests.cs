using System.Runtime.InteropServices;
using AutogradService.Api.Tests.Infrastructure;
using static AutogradService.Api.Tests.Infrastructure.JsonKit;

namespace AutogradService.Api.Tests.Transforms;

/// <summary>b64 tensors decode straight from the request's bytes: every dtype, escaped strings, and every way to get it wrong.</summary>
public sealed class Base64TensorTests(DefaultService service) : IClassFixture<DefaultService>
{
    private readonly HttpClient _client = service.CreateClient();

    private static string B64<T>(params T[] values) where T : unmanaged => Convert.ToBase64String(MemoryMarshal.AsBytes(values.AsSpan()));

    private async Task<RestReply> Identity(string dtype, int[] shape, string b64) =>
        await _client.Post("/v1/evaluate", new { program = "y = identity(x)", inputs = new { x = new { dtype, shape, b64 } }, tensor_encoding = "b64" });

    [Fact]
    public async Task EveryDType_RoundTripsBitForBit()
    {
        float[] f = [1.5f, -0f, float.MaxValue, float.Epsilon, 3];
        double[] d = [Math.PI, -1e300];
        long[] l = [long.MinValue, 9_007_199_254_740_993];
        foreach (var (dtype, shape, b64) in new[] { ("float32", new[] { 5 }, B64(f)), ("float64", new[] { 2 }, B64(d)), ("int64", new[] { 2 }, B64(l)), ("bool", new[] { 3 }, Convert.ToBase64String([1, 0, 1])) })
        {
            var r = (await Identity(dtype, shape, b64)).Ok();
            Assert.Equal(b64, r.Body.At("outputs", "y").GetProperty("b64").GetString());
        }
    }

    [Fact]
    public async Task EscapedBase64_IsReadToo()
    {
        // '/' may be written "\/" by some JSON writers; '+' as "\u002B" by System.Text.Json's default encoder.
        byte[] bytes = [0xFB, 0xFF, 0xBF, 0x3F, 0xFB, 0xEF, 0xBE, 0x3F, 0, 0, 0x80, 0x3F, 0, 0, 0, 0]; // base64 "+/+/..."
        string b64 = Convert.ToBase64String(bytes);
        string escaped = b64.Replace("/", "\\/").Replace("+", "\\u002B");
        Assert.NotEqual(b64, escaped);
        var body = "{\"program\": \"y = identity(x)\", \"tensor_encoding\": \"b64\", \"inputs\": {\"x\": {\"dtype\": \"float32\", \"shape\": [4], \"b64\": \"" + escaped + "\"}}}";
        var r = (await _client.Post("/v1/evaluate", body)).Ok();
        Assert.Equal(b64, r.Body.At("outputs", "y").GetProperty("b64").GetString());
    }

    [Theory]
    [InlineData("float32", new[] { 4 }, "AAAAAA==")]                 // 4 bytes for 16
    [InlineData("float32", new[] { 1 }, "AAAAAAAAAAA=")]             // 8 bytes for 4
    [InlineData("float32", new[] { 16_000_000 }, "AAAA")]            // a short string claiming 64 MB
    [InlineData("float32", new[] { 1 }, "AA*A")]                     // not base64
    [InlineData("float64", new[] { 1 }, "AAAAAAAAAAA")]              // unpadded
    public async Task WrongLengthOrAlphabet_IsInvalidTensor(string dtype, int[] shape, string b64)
    {
        (await Identity(dtype, shape, b64)).Problem(400, "invalid_tensor");
    }
}
