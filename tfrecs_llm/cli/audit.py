"""``tfrecs-llm audit``: does an export only use ops the target TF Serving registers?"""

from __future__ import annotations

import argparse


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Registers ``audit`` on the ``tfrecs-llm`` subcommand parsers."""
    audit = commands.add_parser(
        "audit", help="check that an export only uses ops the target TF Serving registers"
    )
    audit.add_argument("export_dir", help="a version folder (saved_models/demo/1) or model folder (its latest version)")
    audit.add_argument("--target", choices=["stock", "scann"], default="stock",
                       help="stock: tensorflow/serving >= 2.20 (TensorFlow + TF Text ops); "
                            "scann: a TF Serving build that also links ScaNN's ops")
    audit.add_argument("--load-check", action="store_true",
                       help="also load the export with TensorFlow's C++ SavedModel loader (the one TF Serving "
                            "uses) and run serving_default; compiles a small program with g++ once")
    audit.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """``tfrecs-llm audit``: 0 when the export passes, 1 when it does not."""
    from tfrecs_llm.export.op_audit import audit_saved_model

    report = audit_saved_model(args.export_dir, target=args.target)
    print(report.format())
    if args.load_check:
        from tfrecs_llm.export.servability import ServabilityToolError, check_servable

        try:
            result = check_servable(args.export_dir, target=args.target)
        except ServabilityToolError as error:
            raise ValueError(f"cannot run the C++ load check: {error}") from error
        print(result.format())
        return 0 if report.ok and result.ok else 1
    return 0 if report.ok else 1
