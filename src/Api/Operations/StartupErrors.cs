using Microsoft.Extensions.Options;

namespace AutogradService.Api.Operations;

/// <summary>
/// A configuration mistake ends start-up with one line on stderr that names the setting, and exit code
/// <see cref="ExitCode"/> (EX_CONFIG), instead of an unhandled exception's stack trace.
/// </summary>
public static class StartupErrors
{
    public const int ExitCode = 78;

    /// <summary>
    /// Runs every <c>ValidateOnStart</c> validation now, before anything uses the settings (Kestrel's options are made
    /// while the app is built) and before the host starts, which would log the failure at length.
    /// </summary>
    public static void ValidateSettings(IServiceProvider services) => services.GetRequiredService<IStartupValidator>().Validate();

    /// <summary>The one line for a configuration error, or null for any other exception (which keeps its stack trace).</summary>
    public static string? Describe(Exception e) => e switch
    {
        OptionsValidationException v => Line(v.Failures),
        AggregateException a when a.InnerExceptions.All(i => i is OptionsValidationException) =>
            Line(a.InnerExceptions.SelectMany(i => ((OptionsValidationException)i).Failures)),
        // ConfigurationBinder: a value that does not convert ("Failed to convert configuration value at 'Limits:TimeoutMs'...").
        InvalidOperationException when e.Source == "Microsoft.Extensions.Configuration.Binder" => Line([e.Message]),
        // Kestrel: the port is taken or the address is not this machine's.
        IOException when e.Message.StartsWith("Failed to bind to address", StringComparison.Ordinal) =>
            Line([$"{e.Message.TrimEnd('.')} (Server:BindAddress, Server:RestPort, Server:GrpcPort)"]),
        _ => null,
    };

    private static string Line(IEnumerable<string> failures) =>
        "configuration error: " + string.Join("; ", failures.Select(f => f.ReplaceLineEndings(" ").Trim()));
}
