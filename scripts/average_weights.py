"""Average the weights of several fine-tunings of one model into one network, with its card ("model soup").

    python scripts/average_weights.py out/distil/unet-S1.safetensors out/distil/unet-D-s100.safetensors \\
        out/distil/unet-D-s101.safetensors

The card keeps the first model's training record (data, recipe, starting weights, teacher) and names every
averaged model by path and SHA-256, with their own training commands; see docs/results/flip-distillation.
"""

from __future__ import annotations

import argparse
import hashlib
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the averaged model to write (.safetensors)")
    parser.add_argument("models", type=Path, nargs="+", help="two or more checkpoints of one architecture")
    args = parser.parse_args(argv)

    from napari_tumorseg.errors import TumorsegError
    from napari_tumorseg.models.checkpoint import read_checkpoint_info, save_checkpoint
    from napari_tumorseg.training.averaging import average_checkpoints
    from napari_tumorseg.training.card import new_card, read_card, write_card

    try:
        model = average_checkpoints(args.models)
    except (TumorsegError, ValueError) as error:
        print(f"average_weights: {error}", file=sys.stderr)
        return 2
    save_checkpoint(args.out, model, metadata={"training": "see card"})
    info = read_checkpoint_info(args.out)
    cards = [read_card(path) for path in args.models]
    sources = [{"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                "command": card.get("training", {}).get("command")} for path, card in zip(args.models, cards)]
    command = shlex.join(["python", "scripts/average_weights.py", str(args.out), *map(str, args.models)])
    training = {**cards[0].get("training", {}), "averaged_from": sources, "average_command": command,
                "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "note": f"the mean of the weights of {len(sources)} fine-tunings ({command}); the command is the "
                        "first one's",
                "weights": f"uniform average of {len(sources)} networks' weights"}
    architecture = {**info.config.to_dict(), "parameters": sum(p.numel() for p in model.parameters()),
                    "storage": "float32"}
    write_card(args.out, new_card(args.out.stem, architecture, info.preprocessing.to_dict(), training))
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
