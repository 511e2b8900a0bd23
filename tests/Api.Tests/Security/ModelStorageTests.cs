using AutogradService.Api.Models;
using AutogradService.Api.Options;
using AutogradService.Api.Tests.Infrastructure;

namespace AutogradService.Api.Tests.Security;

/// <summary>Where models are kept: never in the working (source) tree by default, and no temp file outlives its write.</summary>
public sealed class ModelStorageTests
{
    [Fact]
    public async Task StaleTempFiles_AreRemovedAtStartUp_AWriteInProgressIsNot()
    {
        var folder = Path.Combine(Path.GetTempPath(), "autograd-api-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        try
        {
            // What a process killed during a write leaves: the temp file, never renamed.
            var stale = Path.Combine(folder, "m.json.0123456789abcdef.tmp");
            File.WriteAllText(stale, "{\"owner\": \"anonymous\", \"gra");
            File.SetLastWriteTimeUtc(stale, DateTime.UtcNow - ModelRepository.StaleTempAge - TimeSpan.FromMinutes(1));
            // Another instance on a shared volume may be writing this one right now.
            var fresh = Path.Combine(folder, "n.json.fedcba9876543210.tmp");
            File.WriteAllText(fresh, "{");

            using var service = new ServiceFactory(modelsPath: folder);
            using var client = service.CreateClient();
            Assert.False(File.Exists(stale));
            Assert.True(File.Exists(fresh));
            (await client.Get("/v1/models")).Ok();
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void DefaultModelRepository_IsInTheUsersDataFolder_NotTheWorkingDirectory()
    {
        var path = new ServerOptions().ModelRepositoryPath;
        Assert.True(Path.IsPathRooted(path), path);
        Assert.EndsWith(Path.Combine("autograd-service", "models"), path);
        Assert.False(path.StartsWith(Directory.GetCurrentDirectory(), StringComparison.Ordinal), path);
        Assert.Equal(ServerOptions.DefaultModelRepositoryPath(), path);
    }
}
