// Two tools on one loopback client: `soak` (bench/load.sh: mixed, checked load and memory over time) and, by default,
// the W8 throughput measurement (bench/service.sh).
return args.Length > 0 && args[0] == "soak"
    ? await AutogradService.Load.Soak.SoakRunner.RunAsync(args[1..])
    : await AutogradService.Load.Throughput.RunAsync(args);
