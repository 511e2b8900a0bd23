using System.Reflection;
using AutogradService.Interop.Tests;
using Microsoft.Playwright;

namespace AutogradService.Playground.Tests;

/// <summary>
/// One real server process and one headless Debian Chromium, driven by Playwright, shared by the playground's
/// tests (each test opens its own browser context). Playwright never downloads a browser here: it launches
/// <see cref="ChromiumPath"/>, which ./test.sh installs (Debian's <c>chromium</c>).
/// </summary>
public sealed class BrowserFixture : IAsyncLifetime
{
    public const string ChromiumPath = "/usr/bin/chromium";

    private IPlaywright? _playwright;

    public ServerProcess Server { get; private set; } = null!;
    public IBrowser Browser { get; private set; } = null!;

    /// <summary>Why the browser tests cannot run here, or null when they can.</summary>
    public string? Missing { get; private set; }

    /// <summary>Where screenshots go: the test output, then copied to the repository's docs/ (README links them).</summary>
    public string ScreenshotDir { get; } = Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "screenshots")).FullName;

    public static string DocsDir { get; } = typeof(BrowserFixture).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .First(a => a.Key == "AutogradDocsDir").Value!;

    public async Task InitializeAsync()
    {
        if (!File.Exists(ChromiumPath))
        {
            Missing = $"{ChromiumPath} is not installed (apt-get install chromium; ./test.sh does it)";
            return;
        }
        Server = await ServerProcess.StartAsync();
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            // Root in CI and containers: Chromium's sandbox needs user namespaces that are often not there.
            ChromiumSandbox = false,
            Args = ["--disable-gpu", "--disable-dev-shm-usage"],
        });
    }

    public async Task<IPage> NewPageAsync(string fragment)
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions
        {
            ViewportSize = new ViewportSize { Width = 1400, Height = 1300 },
            BaseURL = Server.RestBase,
        });
        // A shared 2-core machine may be slow to answer the first requests; correctness, not speed, is tested here.
        context.SetDefaultTimeout(60_000);
        var page = await context.NewPageAsync();
        await page.GotoAsync($"/playground/{fragment}");
        return page;
    }

    /// <summary>Saves a full-page screenshot under the test output and, where the source tree is there, in docs/.</summary>
    public async Task<string> ScreenshotAsync(IPage page, string name, bool copyToDocs)
    {
        var path = Path.Combine(ScreenshotDir, name);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
        if (copyToDocs && Directory.Exists(DocsDir)) File.Copy(path, Path.Combine(DocsDir, name), overwrite: true);
        return path;
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null) await Browser.CloseAsync();
        _playwright?.Dispose();
        Server?.Dispose();
    }
}
