using System.ComponentModel.DataAnnotations;
using System.Net;
using System.Reflection;
using Microsoft.Extensions.Options;

namespace AutogradService.Api.Options;

/// <summary>
/// Options validation that names each bad setting by its configuration key (<c>Limits:TimeoutMs</c>, not
/// <c>TimeoutMs</c> of <c>LimitsOptions</c>) and the value it got, from the properties' data annotations and
/// <see cref="IValidatableObject"/>; run at start-up, so a bad setting stops the service before it listens.
/// </summary>
public static class SettingsValidation
{
    public static OptionsBuilder<T> ValidateSettings<T>(this OptionsBuilder<T> builder, string section) where T : class
    {
        builder.Services.AddSingleton<IValidateOptions<T>>(new SectionValidator<T>(builder.Name, section));
        return builder.ValidateOnStart();
    }

    private sealed class SectionValidator<T>(string? name, string section) : IValidateOptions<T> where T : class
    {
        public ValidateOptionsResult Validate(string? optionsName, T options)
        {
            if (name is not null && name != optionsName) return ValidateOptionsResult.Skip;
            var failures = new List<string>();
            foreach (var property in typeof(T).GetProperties(BindingFlags.Public | BindingFlags.Instance))
            {
                var rules = property.GetCustomAttributes<ValidationAttribute>(inherit: true).ToArray();
                if (rules.Length == 0) continue;
                var key = $"{section}:{property.Name}";
                var value = property.GetValue(options);
                var context = new ValidationContext(options) { MemberName = property.Name, DisplayName = key };
                foreach (var rule in rules)
                    if (rule.GetValidationResult(value, context) is { } failure)
                        failures.Add($"{failure.ErrorMessage?.TrimEnd('.')} (got {Show(value)})");
            }
            if (options is IValidatableObject validatable)
                foreach (var failure in validatable.Validate(new ValidationContext(options)))
                    failures.Add(failure.ErrorMessage ?? $"{section}: {string.Join(", ", failure.MemberNames.Select(m => $"{section}:{m}"))} is invalid");
            return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
        }

        private static string Show(object? value) => value switch
        {
            null => "nothing",
            string s => $"'{Engine.EngineException.Clip(s, 60)}'",
            IFormattable f => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
            _ => value.ToString() ?? "",
        };
    }
}

/// <summary>An IP address to bind (0.0.0.0, 127.0.0.1, ::): Kestrel binds addresses, not host names.</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class IpAddressAttribute() : ValidationAttribute("The field {0} must be an IP address such as 127.0.0.1, 0.0.0.0 or ::, not a host name")
{
    public override bool IsValid(object? value) => value is string s && IPAddress.TryParse(s, out _);
}
