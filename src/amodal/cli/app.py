"""``amodal app``: serve the web page (Gradio) that runs both stages on an uploaded or bundled clip."""

from __future__ import annotations

from amodal.cli import add_command

EXAMPLE = """\
  amodal app                  # then open http://127.0.0.1:7860: load the example, click an object, Run
  amodal app --port 8080 --max-upload-mb 50 --max-frames 64
  # the one-step models: a few seconds per run on a CPU
  amodal app --model default-regression --completion-model default-completion-regression
  # reachable from other machines of the network (anyone who can reach the port can run jobs)
  amodal app --host 0.0.0.0 --port 7860 --device cuda
"""


def register(subparsers) -> None:
    p = add_command(
        subparsers, "app",
        "Serve a web page (on this machine by default) for both stages: upload a video and its masks or take the "
        "bundled example, click the objects, run, scrub through the results and download them as a zip.",
        EXAMPLE,
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on; 0.0.0.0 opens the page to the network")
    p.add_argument("--port", type=int, default=7860, help="port to listen on")
    p.add_argument("--max-upload-mb", type=float, default=200.0, metavar="MB", help="largest upload accepted")
    p.add_argument("--max-frames", type=int, default=120, help="longest clip accepted (the whole clip is held in memory)")
    p.add_argument("--model", default="default",
                   help="stage-1 model selected when the page opens: a bundled name or a model folder (the bundled ones are offered too)")
    p.add_argument("--completion-model", default="default-completion",
                   help="stage-2 model selected when the page opens: a bundled name or a model folder")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--work-dir", help="folder for the runs and their zips (default: a temporary folder)")
    p.set_defaults(func=run)


def run(args) -> int:
    import importlib.util

    from amodal.apps.webapp import AppConfig, serve
    from amodal.checkpoints.registry import resolve
    from amodal.errors import InputError
    from amodal.util.checks import check_device

    if importlib.util.find_spec("gradio") is None:
        raise InputError("gradio is not installed; pip install 'amodal[app]'")
    config = AppConfig(host=args.host, port=args.port, max_upload_mb=args.max_upload_mb, max_frames=args.max_frames,
                       model=args.model, completion_model=args.completion_model, device=args.device, work_dir=args.work_dir)
    check_device(config.device)
    # A wrong model is found now, not at the first press of Run.
    resolve(config.model, "segmentation", flag="--model")
    resolve(config.completion_model, "completion", flag="--completion-model")
    serve(config)
    return 0
