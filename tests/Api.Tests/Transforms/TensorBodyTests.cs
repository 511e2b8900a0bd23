using AutogradService.Api.Tests.Infrastructure;
using static AutogradService.Api.Tests.Infrastructure.JsonKit;

namespace AutogradService.Api.Tests.Transforms;

/// <summary>
/// A transform's tensor maps are read straight from the body's bytes before the rest of the body becomes a document:
/// the answers, and which error wins when a body has several, are what they were when the whole body was a document.
/// </summary>
public sealed class TensorBodyTests(DefaultService service) : IClassFixture<DefaultService>
{
    private readonly HttpClient _client = service.CreateClient();

    private Task<RestReply> Evaluate(string inputsAndMore) =>
        _client.Post("/v1/evaluate", "{\"program\": \"y = x * 2\", " + inputsAndMore + "}");

    [Fact]
    public async Task ObjectNestedAndScalarForms_AllRead()
    {
        var r = (await Evaluate("\"inputs\": {\"x\": {\"dtype\": \"float64\", \"shape\": [2, 2], \"data\": [[1, 2], [3, 4]]}}")).Ok();
        Assert.Equal([2.0, 4, 6, 8], Values(r.Body.At("outputs", "y")));
        Assert.Equal("float64", DType(r.Body.At("outputs", "y")));
        r = (await Evaluate("\"inputs\": {\"x\": [[1, 2, 3]]}")).Ok();
        Assert.Equal([1, 3], Shape(r.Body.At("outputs", "y")));
        r = (await Evaluate("\"inputs\": {\"x\": {\"data\": [1.5], \"dtype\": \"float32\"}}")).Ok(); // data before dtype
        Assert.Equal([3.0], Values(r.Body.At("outputs", "y")));
    }

    [Fact]
    public async Task AllTransformTensorMaps_AreRead()
    {
        var body = "{\"program\": \"y = x * x\", \"inputs\": {\"x\": {\"dtype\": \"float32\", \"shape\": [2], \"data\": [1, 2]}}, " +
                   "\"tangents\": {\"x\": {\"dtype\": \"float32\", \"shape\": [2], \"data\": [1, 1]}}}";
        var r = (await _client.Post("/v1/jvp", body)).Ok();
        Assert.Equal([2.0, 4], Values(r.Body.At("tangents_out", "y")));
        body = "{\"program\": \"y = x * x\", \"inputs\": {\"x\": [1, 2]}, \"wrt\": [\"x\"], \"seeds\": {\"y\": [1, 10]}}";
        r = (await _client.Post("/v1/gradient", body)).Ok();
        Assert.Equal([2.0, 40], Values(r.Body.At("gradients", "x")));
    }

    [Fact]
    public async Task AnUnknownField_WinsOverABadTensor_AsBefore()
    {
        var r = (await Evaluate("\"inputs\": {\"x\": [[1, 2], [3]]}, \"colour\": 1")).Problem(400, "invalid_argument");
        Assert.Contains("colour", r.Text);
    }

    [Fact]
    public async Task ABadTensor_IsNamed_InTheGeneralReadersWords()
    {
        var r = (await Evaluate("\"inputs\": {\"ok\": [1], \"x\": [[1, 2], [3]]}")).Problem(400, "invalid_tensor");
        Assert.Contains("tensor 'x'", r.Text);
        Assert.Contains("ragged", r.Text);
    }

    [Fact]
    public async Task InputsThatAreNotAnObject_AreRefusedByField()
    {
        var r = (await Evaluate("\"inputs\": [1, 2]")).Problem(400, "invalid_argument");
        Assert.Contains("'inputs' must be an object", r.Text);
    }

    [Fact]
    public async Task AFieldGivenTwice_IsReadAsTheDocumentReadsIt()
    {
        var r = (await Evaluate("\"inputs\": {\"x\": [100]}, \"inputs\": {\"x\": [1]}")).Ok();
        Assert.Equal([2.0], Values(r.Body.At("outputs", "y")));
        r = (await Evaluate("\"inputs\": {\"x\": [100], \"x\": [5]}")).Ok();
        Assert.Equal([10.0], Values(r.Body.At("outputs", "y")));
    }

    [Fact]
    public async Task MalformedJsonAfterTheTensors_IsStillMalformedJson()
    {
        var r = (await Evaluate("\"inputs\": {\"x\": [1, 2]}, \"wrt\": [\"x\"")).Problem(400, "invalid_argument");
        Assert.Contains("malformed JSON", r.Text);
        r = (await _client.Post("/v1/evaluate", "{\"program\": \"y = x\", \"inputs\": {\"x\": [1]}} trailing")).Problem(400, "invalid_argument");
        Assert.Contains("malformed JSON", r.Text);
    }

    [Fact]
    public async Task ALoneSurrogateInATensorName_IsTheBodysError()
    {
        var r = (await Evaluate("\"inputs\": {\"\\ud800\": [1]}")).Problem(400, "invalid_argument");
        Assert.Contains("lone surrogate", r.Text);
    }

    [Fact]
    public async Task LargeAnswer_IsWrittenWhole_ThroughChunkedFlushes()
    {
        // 300k floats is several flushes of the response pipe; every value must arrive once and in order.
        var values = Enumerable.Range(0, 300_000).Select(i => i * 0.5f).ToArray();
        var body = "{\"program\": \"y = x * 2\", \"inputs\": {\"x\": {\"dtype\": \"float32\", \"shape\": [300000], \"data\": [" +
                   string.Join(",", values.Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture))) + "]}}}";
        var r = (await _client.Post("/v1/evaluate", body)).Ok();
        var y = Values(r.Body.At("outputs", "y"));
        Assert.Equal(values.Length, y.Length);
        for (int i = 0; i < y.Length; i += 997) Assert.Equal(i * 1.0, y[i]);
        Assert.Equal(299_999.0, y[^1]);
    }
}
