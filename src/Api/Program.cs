using AutogradService.Api.Hosting;

var builder = WebApplication.CreateBuilder(args);
builder.AddAutogradService();

var app = builder.Build();
app.MapAutogradService();
app.Run();

/// <summary>Entry point; public so integration tests can host the service in-process.</summary>
public partial class Program;
