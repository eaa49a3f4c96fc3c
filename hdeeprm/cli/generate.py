"""``hdeeprm generate``: a synthetic workload of the Lublin-Feitelson model (JPDC 2003), as
an SWF trace or, converted for a platform as ``hdeeprm convert`` does, a Batsim JSON workload
(hdeeprm.inputs.workload.lublin)."""

from __future__ import annotations

import argparse


def add_subcommands(sub) -> dict:
    gen = sub.add_parser(
        "generate", help="generate a workload of the Lublin-Feitelson model (SWF or Batsim JSON)",
        description="Generate N jobs of the Lublin-Feitelson (1999/2003) model of rigid parallel jobs, with the "
                    "published parameters of its reference program m_lublin99.c (batch and interactive jobs), "
                    "for a machine of C cores, seeded. FILE.swf: an SWF trace; FILE.json: a Batsim JSON workload "
                    "for --platform, converted as `hdeeprm convert` does.")
    gen.add_argument("--jobs", type=int, required=True, metavar="N", help="number of jobs")
    gen.add_argument("--cores", type=int, metavar="C",
                     help="cores of the machine; job sizes are fitted to it (default: the platform's)")
    gen.add_argument("--load", type=float, metavar="L",
                     help="target offered load: sum(size x run time) / (C x submission span), reached by scaling "
                          "every inter-arrival time by one factor (default: the model's own arrival rate)")
    gen.add_argument("--seed", type=int, default=0, help="seed of the model's draws and of the conversion (default 0)")
    gen.add_argument("--estimate-factor", type=float, default=1.0, metavar="K",
                     help="requested time = run time x U(1, K), rounded up (default 1: the run time)")
    gen.add_argument("--no-scale", action="store_true",
                     help="keep the published size parameters (fitted to 128 nodes) instead of shifting them to "
                          "C cores; sizes are still capped at C")
    gen.add_argument("--typeless", action="store_true",
                     help="one job type, with the program's whole-sample parameters (its INCLUDE_JOBS_TYPE 0) "
                          "instead of batch and interactive jobs")
    gen.add_argument("--out", required=True, metavar="FILE", help="FILE.swf (SWF trace) or FILE.json (Batsim JSON)")
    gen.add_argument("--platform", metavar="P", help="platform (file or bundled name) of a .json workload; "
                                                      "its cores are the default --cores")
    gen.add_argument("--hierarchy", help="hierarchy.json for an XML platform")
    return {"generate": cmd_generate}


def cmd_generate(args: argparse.Namespace) -> int:
    from hdeeprm.common.errors import ConfigError
    from hdeeprm.inputs.workload.lublin import generate_lublin

    out = args.out
    if not out or not out.strip():
        raise ConfigError(f"--out {out!r}: empty; expected FILE.swf or FILE.json")
    kind = "json" if out.lower().endswith(".json") else "swf" if out.lower().endswith(".swf") else None
    if kind is None:
        raise ConfigError(f"--out {out}: expected a name ending in .swf (SWF trace) or .json (Batsim JSON)")
    if kind == "json" and args.platform is None:
        raise ConfigError("--out *.json: a Batsim JSON workload is for a platform; give --platform "
                          "(or write FILE.swf)")
    platform = None
    if args.platform is not None:
        from hdeeprm.inputs.platform import load_platform, resolve_platform_name

        platform = load_platform(resolve_platform_name(args.platform), hierarchy=args.hierarchy)
    cores = args.cores
    if cores is None:
        if platform is None:
            raise ConfigError("give --cores (the machine's size) or --platform")
        cores = platform.nb_machines
    elif platform is not None and cores > platform.nb_machines:
        raise ConfigError(f"--cores {cores}: more than the {platform.nb_machines} cores of {args.platform}; "
                          "its largest jobs would be rejected there")
    from hdeeprm.inputs.workload.lublin import LublinParameters

    trace = generate_lublin(args.jobs, cores, load=args.load, rng=args.seed,
                            params=LublinParameters.typeless() if args.typeless else None,
                            scale_to_machine=not args.no_scale, estimate_factor=args.estimate_factor)
    command = " ".join(["generate", f"--jobs {args.jobs}", f"--cores {cores}"]
                       + ([f"--load {args.load:g}"] if args.load is not None else [])
                       + [f"--seed {args.seed}"]
                       + ([f"--estimate-factor {args.estimate_factor:g}"] if args.estimate_factor != 1 else [])
                       + (["--no-scale"] if args.no_scale else []) + (["--typeless"] if args.typeless else []))
    load = trace.offered_load
    what = f"{len(trace):,} jobs for {cores:,} cores, offered load {load:.3f}" + (
        f" (target {args.load:g})" if args.load is not None else "")
    if kind == "swf":
        trace.write_swf(out, command)
        print(f"lublin: wrote {what} to {out}")
        return 0
    # As `hdeeprm convert` (hdeeprm.cli.simulate._load_inputs): the platform's reference speed
    # and machines, the real run times, and the conversion generator of --seed.
    from hdeeprm.common.seeding import run_generators
    from hdeeprm.inputs.workload import ConversionOptions, swf_to_workload, write_batsim_workload

    options = ConversionOptions(runtime_model="real", reference_speed_gflops=platform.reference_speed_gflops,
                                max_res=platform.nb_machines)
    workload, _ = swf_to_workload(trace.to_swf_trace(source=out), options, rng=run_generators(args.seed)[0])
    write_batsim_workload(workload, out)
    print(f"lublin: wrote {what} to {out} (Batsim JSON for {platform.nb_machines:,} cores)")
    return 0
