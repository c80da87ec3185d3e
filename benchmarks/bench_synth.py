"""Speed of the synthetic world: rendering (frames/s) and writing a split (clips/min).

    python benchmarks/bench_synth.py                      # render 20 default clips in this process
    python benchmarks/bench_synth.py --write --clips 60 --workers 2   # also write a split to a temp dir

Prints one JSON object. Rendering is timed per clip (planning included) in one
process; writing covers everything ``amodal data synth`` does (render, JPEG/PNG
encoding, RLE, annotations) with ``--workers`` processes.
"""

from __future__ import annotations

import platform
import resource
import tempfile
import time

import numpy as np

from amodal.data.synth import SynthConfig, SynthSplit, generate_clip, write_split

from common import make_parser, print_json


def build_parser():
    parser = make_parser(
        __doc__,
        "seed", "config",
        seed={"help": "first seed; clip i uses seed + i"},
        config={"default": None, "help": "SynthConfig JSON file (default: built-in)"},
    )
    parser.add_argument("--clips", type=int, default=20, help="clips to render (and write)")
    parser.add_argument("--write", action="store_true", help="also time writing a split of --clips videos")
    parser.add_argument("--workers", type=int, default=2, help="worker processes for --write")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    config = SynthConfig.from_json(args.config) if args.config else SynthConfig()

    generate_clip(config.replace(num_frames=2), 0)  # warm-up: imports and first-call overhead
    seconds, objects = [], []
    cpu_start = time.process_time()
    for i in range(args.clips):
        start = time.perf_counter()
        clip = generate_clip(config, args.seed + i)
        seconds.append(time.perf_counter() - start)
        objects.append(clip.num_objects)
    cpu = time.process_time() - cpu_start
    total = float(np.sum(seconds))
    result = {
        "resolution": [config.height, config.width],
        "num_frames": config.num_frames,
        "clips": args.clips,
        "mean_objects": round(float(np.mean(objects)), 2),
        "render_seconds_per_clip": round(total / args.clips, 3),
        "render_seconds_per_clip_p90": round(float(np.percentile(seconds, 90)), 3),
        "render_frames_per_second": round(args.clips * config.num_frames / total, 1),
        # CPU time does not grow when other processes share the cores; wall time does.
        "render_cpu_seconds_per_clip": round(cpu / args.clips, 3),
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
    }
    if args.write:
        usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
        before = sum(u.ru_utime + u.ru_stime for u in usage)
        with tempfile.TemporaryDirectory() as out:
            job = SynthSplit(out=out, split="bench", videos=args.clips, seed=args.seed, synth=config, workers=args.workers)
            summary = write_split(job, progress=False)
        usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
        write_cpu = (sum(u.ru_utime + u.ru_stime for u in usage) - before) / args.clips
        result.update(
            write_workers=args.workers,
            write_clips_per_minute=summary["clips_per_minute"],
            write_cpu_seconds_per_clip=round(write_cpu, 3),
            # What --workers cores give when nothing else runs on them.
            write_clips_per_minute_if_cores_idle=round(60.0 * args.workers / write_cpu, 1),
        )
    print_json(result)


if __name__ == "__main__":
    main()
