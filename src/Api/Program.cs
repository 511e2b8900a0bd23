using AutogradService.Api.Hosting;
using AutogradService.Api.Operations;

// The container's HEALTHCHECK runs the same binary in probe mode (no curl in the runtime image).
if (args.Length > 0 && args[0] == HealthProbe.Flag) return await HealthProbe.RunAsync(args[1..]);
if (args.Length > 0 && args[0] == AutogradService.Api.Security.ApiKeyHash.Flag) return AutogradService.Api.Security.ApiKeyHash.Print(args[1..]);

try
{
    var builder = WebApplication.CreateBuilder(args);
    builder.AddAutogradService();

    var app = builder.Build();
    StartupErrors.ValidateSettings(app.Services);
    app.MapAutogradService();
    app.Run();
    return 0;
}
catch (Exception e) when (StartupErrors.Describe(e) is { } line)
{
    // A bad setting: one line naming it, not a stack trace.
    Console.Error.WriteLine(line);
    return StartupErrors.ExitCode;
}

/// <summary>Entry point; public so integration tests can host the service in-process.</summary>
public partial class Program;
