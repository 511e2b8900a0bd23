using System.Text.Json;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace AutogradService.Playground.Tests;

/// <summary>
/// The playground page in a real browser (Debian's Chromium through Playwright) against the real server process:
/// E4's plot, E5's graph, C5's branch, and a syntax error shown at its line. Numbers are read from the page's own
/// data (window.playground, data attributes, the results table), never from pixels.
/// </summary>
public sealed class PlaygroundTests(BrowserFixture browser, ITestOutputHelper output) : IClassFixture<BrowserFixture>
{
    /// <summary>float32 rounding at magnitude ≤ 1: two units in the last place of 1 (2^-23 each).</summary>
    private const double Float32Rounding = 2.0 / (1 << 23);

    [Fact]
    public async Task E4_plots_sin_with_a_derivative_from_the_service_equal_to_cos_and_shows_hover_values()
    {
        if (!Available()) return;
        var (page, errors) = await OpenAsync("#E4");
        await page.WaitForFunctionAsync("() => window.playground.plot !== null && window.playground.plot.x.length === 200");

        var plot = await page.EvaluateAsync<JsonElement>("() => window.playground.plot");
        var xs = Doubles(plot, "x");
        var f = Doubles(plot, "f");
        var df = Doubles(plot, "df");
        var d2f = Doubles(plot, "d2f");
        Assert.Equal(200, xs.Length);
        Assert.Equal((double)(float)(-2 * Math.PI), xs[0]);
        Assert.Equal((double)(float)(2 * Math.PI), xs[^1]);
        for (int i = 0; i < xs.Length; i++)
        {
            // Each x is a float32 (what the service computed at); the reference is computed in double at that x.
            Assert.Equal((double)(float)xs[i], xs[i]);
            Assert.True(Math.Abs(df[i] - Math.Cos(xs[i])) <= Float32Rounding, $"f'({xs[i]}) = {df[i]}, cos = {Math.Cos(xs[i])}");
            Assert.True(Math.Abs(f[i] - Math.Sin(xs[i])) <= Float32Rounding, $"f({xs[i]}) = {f[i]}, sin = {Math.Sin(xs[i])}");
            Assert.True(Math.Abs(d2f[i] + Math.Sin(xs[i])) <= Float32Rounding, $"f''({xs[i]}) = {d2f[i]}, -sin = {-Math.Sin(xs[i])}");
        }

        // Three curves are drawn, and the SVG says how many points they hold.
        Assert.Equal("200", await page.Locator(".plot-svg").GetAttributeAsync("data-points"));
        Assert.Equal(3, await page.Locator(".plot-svg path.series").CountAsync());

        // Hovering the middle of the plot reads out the values at the nearest point.
        var hit = page.Locator(".plot-svg .hit");
        var box = (await hit.BoundingBoxAsync())!;
        await hit.HoverAsync(new LocatorHoverOptions { Position = new Position { X = box.Width / 2, Y = box.Height / 3 } });
        var readout = page.Locator("#plot-readout");
        await Assertions.Expect(readout).ToContainTextAsync("x = ");
        int index = int.Parse((await readout.GetAttributeAsync("data-index"))!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(index, 95, 104);
        Assert.Contains("f′ = ", await readout.TextContentAsync(), StringComparison.Ordinal);

        // The case also ran its gradient at the inputs given: numbers in the results table.
        await Assertions.Expect(page.Locator("[data-section=gradients] tr[data-name=x] td.tensor")).ToContainTextAsync("-1");
        output.WriteLine(await browser.ScreenshotAsync(page, "playground.png", copyToDocs: true));
        Assert.True(errors.Count == 0, string.Join('\n', errors));
    }

    [Fact]
    public async Task E5_draws_the_graph_with_its_op_nodes_and_E6_values_and_adjoints_after_a_gradient()
    {
        if (!Available()) return;
        var (page, errors) = await OpenAsync("#E5");
        await page.WaitForFunctionAsync("() => window.playground.result !== null && window.playground.graph !== null");

        var ops = await page.Locator(".graph-svg g.node[data-op]").EvaluateAllAsync<string[]>("nodes => nodes.map(n => n.dataset.op)");
        foreach (var op in new[] { "pow", "log", "sin", "mul", "div", "add" }) Assert.Contains(op, ops);
        Assert.Equal(6, ops.Length);
        Assert.Equal(1, await page.Locator(".graph-svg g.node.input[data-name=x]").CountAsync());
        Assert.Equal(1, await page.Locator(".graph-svg g.node.output[data-name=f]").CountAsync());
        // Edges go in both directions of the layout (one per value read, plus the literals 2 and 1).
        Assert.True(await page.Locator(".graph-svg path.edge").CountAsync() >= 9);

        // After the gradient each node shows its value and adjoint (E6's chain-rule terms), in float64.
        var sin = page.Locator(".graph-svg g.node[data-op=sin]");
        await Assertions.Expect(sin.Locator("text.type")).ToHaveTextAsync("sin_3: float64[4]");
        await Assertions.Expect(sin.Locator("text.value")).ToHaveTextAsync("value [0.47943, 0.84147, 0.9093, -0.99749]");
        await Assertions.Expect(sin.Locator("text.adjoint")).ToHaveTextAsync("adjoint [-1.3863, 0, 1.3863, 0.81093]");
        await Assertions.Expect(page.Locator(".graph-svg g.node[data-op=add] text.value")).ToHaveTextAsync("value [1.3354, 1, 1.7606, -1.4756]");

        // The full numbers are in the results: E6's f and f'.
        var graph = await page.EvaluateAsync<JsonElement>("() => window.playground.result");
        Assert.Equal([1.335375079256127, 1.0, 1.7605538953892688, -1.4755654918281964], Doubles(graph.GetProperty("outputs").GetProperty("f"), "data"));
        var gradient = Doubles(graph.GetProperty("gradients").GetProperty("x"), "data");
        double[] expected = [-3.2988856025489586, 0.682941969615793, 0.08239541392249738, 0.9429118052705564];
        for (int i = 0; i < 4; i++) Assert.Equal(expected[i], gradient[i], 1e-12);
        output.WriteLine(await browser.ScreenshotAsync(page, "playground-graph.png", copyToDocs: true));
        Assert.True(errors.Count == 0, string.Join('\n', errors));
    }

    [Fact]
    public async Task C5_runs_the_loop_and_branch_graph_and_highlights_the_branch_taken()
    {
        if (!Available()) return;
        var (page, errors) = await OpenAsync("#C5");
        await page.WaitForFunctionAsync("() => window.playground.result !== null");
        await Assertions.Expect(page.Locator("[data-section=outputs] tr[data-name=c] td.tensor")).ToHaveTextAsync("1024");
        await Assertions.Expect(page.Locator("[data-section=gradients] tr[data-name=a] td.tensor")).ToHaveTextAsync("2048");
        Assert.Equal(1, await page.Locator(".graph-svg g.node[data-op=while]").CountAsync());
        await Assertions.Expect(page.Locator(".graph-svg g.cluster.taken")).ToHaveAttributeAsync("data-cluster", "if choose: then");
        await Assertions.Expect(page.Locator(".graph-svg g.cluster.not-taken")).ToHaveAttributeAsync("data-cluster", "if choose: else");

        // a = -0.3 takes the other branch: c = -122880.0078, dc/da = 409600.
        await page.Locator("#inputs").FillAsync("{\"a\": -0.3}");
        await RunAsync(page);
        await Assertions.Expect(page.Locator("[data-section=gradients] tr[data-name=a] td.tensor")).ToHaveTextAsync("409600");
        await Assertions.Expect(page.Locator(".graph-svg g.cluster.taken")).ToHaveAttributeAsync("data-cluster", "if choose: else");
        await browser.ScreenshotAsync(page, "playground-c5.png", copyToDocs: false);
        Assert.True(errors.Count == 0, string.Join('\n', errors));
    }

    [Fact]
    public async Task A_syntax_error_is_shown_at_its_line_and_column_and_clears_when_the_text_changes()
    {
        if (!Available()) return;
        var (page, errors) = await OpenAsync("#C1");
        await page.WaitForFunctionAsync("() => window.playground.result !== null");

        await page.Locator("#source").FillAsync("t = dot(x, x)\ny = 2 * * t\nz = y");
        await RunAsync(page);

        var error = page.Locator("#error");
        await Assertions.Expect(error).ToBeVisibleAsync();
        await Assertions.Expect(error).ToContainTextAsync("line 2, column 9");
        await Assertions.Expect(error).ToContainTextAsync("invalid_graph");
        Assert.Equal("2", await page.Locator("#editor").GetAttributeAsync("data-error-line"));
        await Assertions.Expect(page.Locator("#gutter span.error")).ToHaveAttributeAsync("data-line", "2");
        var line = page.Locator("#highlight .line.error");
        await Assertions.Expect(line).ToHaveCountAsync(1);
        await Assertions.Expect(line).ToHaveAttributeAsync("data-line", "2");
        // The mark sits on the token at column 9: the second '*'.
        await Assertions.Expect(line.Locator(".error-at")).ToHaveTextAsync("*");
        var state = await page.EvaluateAsync<JsonElement>("() => window.playground.error");
        Assert.Equal(2, state.GetProperty("line").GetInt32());
        Assert.Equal(9, state.GetProperty("column").GetInt32());
        // The previous program's graph is gone rather than shown next to this one's error.
        Assert.Equal(0, await page.Locator(".graph-svg").CountAsync());
        await browser.ScreenshotAsync(page, "playground-syntax-error.png", copyToDocs: false);

        // Editing clears the mark; an unknown op is flagged by the highlighter before anything is sent.
        await page.Locator("#source").FillAsync("y = dt(x, x)");
        await Assertions.Expect(page.Locator("#highlight .line.error")).ToHaveCountAsync(0);
        await Assertions.Expect(page.Locator("#highlight .tok-unknown-op")).ToHaveTextAsync("dt");
        await Assertions.Expect(page.Locator("#highlight .tok-target")).ToHaveTextAsync("y");
        Assert.True(errors.Count == 0, string.Join('\n', errors));
    }

    [Fact]
    public async Task The_editor_highlights_Python_shaped_keywords_for_control_flow()
    {
        if (!Available()) return;
        var (page, errors) = await OpenAsync("#C1");
        await page.WaitForFunctionAsync("() => window.playground.result !== null");
        await page.Locator("#source").FillAsync("def f(x):\n    while norm(x) < 1000 and not done:\n        x = 2 * x\n    if sum(x) > 0:\n        return x\n    elif x:\n        return x\n    else:\n        return 100 * x  # scaled");
        var keywords = await page.Locator("#highlight .tok-kw").AllTextContentsAsync();
        Assert.Equal(["def", "while", "and", "not", "if", "return", "elif", "return", "else", "return"], keywords);
        await Assertions.Expect(page.Locator("#highlight .tok-comment")).ToHaveTextAsync("# scaled");
        Assert.Contains("norm", await page.Locator("#highlight .tok-op-name").AllTextContentsAsync());
        // A function the program defines is a known call, not an unknown op.
        await Assertions.Expect(page.Locator("#highlight .tok-def-name")).ToHaveTextAsync("f");
        await page.Locator("#source").FillAsync("def f(x):\n    return 2 * x\ny = f(a)");
        await Assertions.Expect(page.Locator("#highlight .tok-unknown-op")).ToHaveCountAsync(0);
        Assert.Equal(["f", "f"], await page.Locator("#highlight .tok-def-name, #highlight .tok-op-name").AllTextContentsAsync());

        // Enter keeps the indentation and goes one level deeper after a ':'; Tab indents.
        await page.Locator("#source").FillAsync("def g(x):");
        await page.Locator("#source").PressAsync("End");
        await page.Locator("#source").PressAsync("Enter");
        await page.Keyboard.TypeAsync("while x < 3:");
        await page.Locator("#source").PressAsync("Enter");
        await page.Keyboard.TypeAsync("x = 2 * x");
        await page.Locator("#source").PressAsync("Enter");
        await page.Locator("#source").PressAsync("Tab");
        Assert.Equal("def g(x):\n    while x < 3:\n        x = 2 * x\n            ", await page.Locator("#source").InputValueAsync());
        Assert.True(errors.Count == 0, string.Join('\n', errors));
    }

    [Fact]
    public async Task The_plot_takes_pi_in_its_bounds_and_refuses_points_past_its_limits_a_reversed_range_and_two_inputs()
    {
        if (!Available()) return;
        var (page, errors) = await OpenAsync("#C1");
        await page.WaitForFunctionAsync("() => window.playground.result !== null");
        await page.Locator("#source").FillAsync("y = sin(x) * x");
        await page.Locator("#plot-from").FillAsync("-pi/2");
        await page.Locator("#plot-to").FillAsync("π");
        await page.Locator("#plot-second").UncheckAsync();

        // The largest grid the page allows (5000 points) is plotted; without f'' only two curves are drawn.
        await page.Locator("#plot-points").FillAsync("5000");
        await ClickAsync(page, "#plot");
        await Assertions.Expect(page.Locator(".plot-svg")).ToHaveAttributeAsync("data-points", "5000");
        Assert.Equal(2, await page.Locator(".plot-svg path.series").CountAsync());
        var plot = await page.EvaluateAsync<JsonElement>("() => window.playground.plot");
        Assert.Equal(JsonValueKind.Null, plot.GetProperty("d2f").ValueKind);
        var xs = Doubles(plot, "x");
        Assert.Equal((double)(float)(-Math.PI / 2), xs[0]);
        Assert.Equal((double)(float)Math.PI, xs[^1]);
        var df = Doubles(plot, "df");
        for (int i = 0; i < xs.Length; i += 97)
            Assert.True(Math.Abs(df[i] - (Math.Cos(xs[i]) * xs[i] + Math.Sin(xs[i]))) <= 8 * Float32Rounding, $"f'({xs[i]}) = {df[i]}");

        // One point past it, and the smallest grid past the other edge, are refused before anything is sent.
        foreach (var points in new[] { "5001", "1" })
        {
            await page.Locator("#plot-points").FillAsync(points);
            await ClickAsync(page, "#plot");
            await Assertions.Expect(page.Locator("#error")).ToContainTextAsync("points must be between 2 and 5000");
        }
        await page.Locator("#plot-points").FillAsync("2");
        await ClickAsync(page, "#plot");
        await Assertions.Expect(page.Locator(".plot-svg")).ToHaveAttributeAsync("data-points", "2");
        await Assertions.Expect(page.Locator("#error")).ToBeHiddenAsync();

        await page.Locator("#plot-to").FillAsync("-2π");
        await ClickAsync(page, "#plot");
        await Assertions.Expect(page.Locator("#error")).ToContainTextAsync("from a smaller number to a larger one");
        await page.Locator("#plot-to").FillAsync("two");
        await ClickAsync(page, "#plot");
        await Assertions.Expect(page.Locator("#error")).ToContainTextAsync("'two' is not a number");

        await page.Locator("#plot-to").FillAsync("2π");
        await page.Locator("#source").FillAsync("y = x * z");
        await ClickAsync(page, "#plot");
        await Assertions.Expect(page.Locator("#error")).ToContainTextAsync("plotting needs a program with one input; this one has 2");

        // Bad JSON in a field is named, not sent.
        await page.Locator("#inputs").FillAsync("{\"x\": ");
        await ClickAsync(page, "#run");
        await Assertions.Expect(page.Locator("#error")).ToContainTextAsync("Inputs is not valid JSON");
        Assert.True(errors.Count == 0, string.Join('\n', errors));
    }

    [Fact]
    public async Task A_link_carries_the_program_inputs_and_transform_and_runs_them()
    {
        if (!Available()) return;
        var (page, errors) = await OpenAsync("#C3");
        await page.WaitForFunctionAsync("() => window.playground.result !== null");
        await page.Locator("#source").FillAsync("# a comment & symbols\ny = x ** 3");
        await page.Locator("#inputs").FillAsync("{\"x\": [1, 2]}");
        await page.Locator("#extra").FillAsync("");
        await page.Locator("#transform").SelectOptionAsync("jvp");
        await page.Locator("#link").ClickAsync();
        var url = page.Url;
        Assert.Contains("#program=", url, StringComparison.Ordinal);

        // The link in a fresh page: same program, same inputs, the JVP with tangent ones: 3x² = [3, 12].
        var (fresh, freshErrors) = await OpenAsync(url[url.IndexOf('#', StringComparison.Ordinal)..]);
        await fresh.WaitForFunctionAsync("() => window.playground.result !== null");
        Assert.Equal("# a comment & symbols\ny = x ** 3", await fresh.Locator("#source").InputValueAsync());
        Assert.Equal("jvp", await fresh.Locator("#transform").InputValueAsync());
        await Assertions.Expect(fresh.Locator("[data-section=tangents_out] tr[data-name=y] td.tensor")).ToHaveTextAsync("[3, 12]");
        Assert.True(errors.Count + freshErrors.Count == 0, string.Join('\n', errors.Concat(freshErrors)));
    }

    private bool Available()
    {
        if (browser.Missing is null) return true;
        var ci = Environment.GetEnvironmentVariable("CI") is { Length: > 0 } flag && flag != "false" && flag != "0";
        if (!ci && Environment.GetEnvironmentVariable("AUTOGRAD_SKIP_PLAYGROUND") == "1")
        {
            output.WriteLine($"NOT RUN (AUTOGRAD_SKIP_PLAYGROUND=1): {browser.Missing}");
            return false;
        }
        Assert.Fail(browser.Missing + (ci ? "" : " (on a developer machine, AUTOGRAD_SKIP_PLAYGROUND=1 skips these tests instead)"));
        return false;
    }

    /// <summary>Opens the page at a case; collects script errors and failed requests, which every test expects none of.</summary>
    private async Task<(IPage Page, List<string> Errors)> OpenAsync(string fragment)
    {
        var page = await browser.NewPageAsync(fragment);
        var errors = new List<string>();
        page.PageError += (_, e) => errors.Add("page error: " + e);
        // Failed loads are checked by URL below (the browser's console line does not name it); the service's
        // refusals (problem details, 400) are expected in some tests.
        page.Console += (_, m) => { if (m.Type == "error" && !m.Text.StartsWith("Failed to load resource", StringComparison.Ordinal)) errors.Add("console: " + m.Text); };
        page.Response += (_, r) => { if (r.Status >= 400 && !(r.Status == 400 && r.Url.Contains("/v1/", StringComparison.Ordinal))) errors.Add($"HTTP {r.Status}: {r.Url}"); };
        page.RequestFailed += (_, r) => errors.Add($"request failed: {r.Url} ({r.Failure})");
        await page.WaitForFunctionAsync("() => Number(document.body.dataset.completed || 0) >= 1");
        return (page, errors);
    }

    /// <summary>Clicks Run and waits until that run has finished.</summary>
    private static Task RunAsync(IPage page) => ClickAsync(page, "#run");

    /// <summary>Clicks a button that starts a task and waits until it has finished (the page counts completed tasks).</summary>
    private static async Task ClickAsync(IPage page, string selector)
    {
        var before = await page.EvaluateAsync<int>("() => Number(document.body.dataset.completed || 0)");
        await page.Locator(selector).ClickAsync();
        await page.WaitForFunctionAsync($"() => Number(document.body.dataset.completed || 0) > {before}");
    }

    private static double[] Doubles(JsonElement parent, string property) =>
        parent.GetProperty(property).EnumerateArray().Select(e => e.GetDouble()).ToArray();
}
