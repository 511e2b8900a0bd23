using AutogradService.Api.Hosting;

// The container's HEALTHCHECK runs the same binary in probe mode (no curl in the runtime image).
if (args.Length > 0 && args[0] == HealthProbe.Flag) return await HealthProbe.RunAsync(args[1..]);
if (args.Length > 0 && args[0] == AutogradService.Api.Security.ApiKeyHash.Flag) return AutogradService.Api.Security.ApiKeyHash.Print(args[1..]);

var builder = WebApplication.CreateBuilder(args);
builder.AddAutogradService();

var app = builder.Build();
app.MapAutogradService();
app.Run();
return 0;

/// <summary>Entry point; public so integration tests can host the service in-process.</summary>
public partial class Program;
