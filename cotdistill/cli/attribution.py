"""`cotdistill attribute`: per-token importance of each rationale token for the gold label.
"""

from __future__ import annotations

from pathlib import Path

import click

from cotdistill.errors import ConfigError
from cotdistill.cli.common import _fail, _pairs, science


def _attribution_data(run_dir, dataset, options, split) -> tuple[str, dict, str]:
    """Dataset name, options and split: as given, else the run's own (its config.yaml)."""
    from cotdistill.config import read_config_file

    opts = _pairs(options, "--option")
    if run_dir and (dataset is None or split is None):
        saved = Path(run_dir) / "config.yaml"
        try:
            data = read_config_file(saved) if saved.exists() else {}
        except ConfigError as e:
            _fail(str(e))
        data = data.get("data") if isinstance(data, dict) else None
        data = data if isinstance(data, dict) else {}
        if dataset is None and data.get("name"):
            dataset, opts = data["name"], opts or dict(data.get("options") or {})
        split = split or data.get("train_split")
    if dataset is None:
        _fail("--dataset is needed (only a --run folder knows its own dataset)")
    return dataset, opts, split or "train"


@science.command(name="attribute")
@click.option("--run", "run_dir", type=click.Path(file_okay=False, exists=True), default=None,
              help="A `before` run folder: its trained model, and by default its dataset.")
@click.option("--student", default=None, help="An untrained student: tiny, smollm2-135m, a hub id.")
@click.option("--model", "model_path", default=None, help="Any causal LM: a hub id or a folder.")
@click.option("--dataset", default=None, help="Default: the run's dataset.")
@click.option("--option", "options", multiple=True, help="Dataset option KEY=VALUE (default: the run's).")
@click.option("--split", default=None, help="Default: the run's training split, else train.")
@click.option("--n", "n", type=int, default=None, help="Only the first N examples with a rationale.")
@click.option("--method", type=click.Choice(["ig", "grad_x_input", "occlusion"]), default="ig",
              show_default=True)
@click.option("--steps", default=32, show_default=True, help="IG quadrature nodes.")
@click.option("--tolerance", type=float, default=None,
              help="IG: redo examples whose completeness error (nats) exceeds this, with more steps.")
@click.option("--baseline", type=click.Choice(["zero", "pad"]), default="zero", show_default=True)
@click.option("--batch-size", default=64, show_default=True, help="Sequences per forward pass.")
@click.option("--level", type=click.Choice(["word", "token"]), default="word", show_default=True,
              help="Units of the scores file (token: only for students sharing the tokenizer).")
@click.option("--abs", "absolute", is_flag=True, help="Write |score| (advised for grad_x_input).")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Scores file (JSONL) to write.")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 … (default: cuda if available).")
@click.option("--seed", default=0, show_default=True, help="Initialisation of an untrained tiny student.")
def attribute_command(run_dir, student, model_path, dataset, options, split, n, method, steps, tolerance,
                      baseline, batch_size, level, absolute, out, device, seed) -> None:
    """Score each rationale token's importance for the gold label; write the key_tokens scores file."""
    if sum(bool(s) for s in (run_dir, student, model_path)) != 1:
        _fail("give exactly one scoring model: --run RUN_DIR, --student NAME or --model ID_OR_PATH")
    name, opts, split = _attribution_data(run_dir, dataset, options, split)
    import time

    from tqdm import tqdm

    from cotdistill import attribution
    from cotdistill.config import StudentConfig
    from cotdistill.data import load_examples
    from cotdistill.errors import DataError
    from cotdistill.run import tokenizer_texts
    from cotdistill.errors import StudentError

    try:
        examples = [ex for ex in load_examples(name, split, **opts) if ex.rationale][:n]
        if not examples:
            _fail(f"split {split!r} of {name!r} has no example with a rationale")
        texts = tokenizer_texts(load_examples(name, "train", **opts)) if student == "tiny" else None
        scorer = attribution.load_scoring_model(StudentConfig(name=student) if student else run_dir or model_path,
                                                train_texts=texts, seed=seed)
        bar = tqdm(total=len(examples), desc=method, unit="ex", dynamic_ncols=True)
        t0 = time.perf_counter()
        results = attribution.attribute(scorer.model, scorer.tokenizer, examples, method=method, steps=steps,
                                        batch_size=batch_size, device=device, baseline=baseline,
                                        tolerance=tolerance, progress=lambda done, total: bar.update(done - bar.n))
        seconds = time.perf_counter() - t0
        bar.close()
        attribution.write_scores(out, results, level, absolute=absolute)
    except (ConfigError, DataError, StudentError, ValueError) as e:
        _fail(str(e))
    s = attribution.summarize(results, seconds)
    line = f"{s['n']} examples of {name}/{split} · {method} · {s['examples_per_s']:.1f} examples/s"
    if s["mean_completeness_error"] is not None:
        line += (f" · completeness error mean {s['mean_completeness_error']:.2e} "
                 f"(max {s['max_completeness_error']:.2e}) nats")
    click.echo(line)
    if (agreement := attribution.agreement(results, examples)) is not None:
        click.echo(attribution.agreement_text(agreement))
    click.echo(f"wrote {out} ({level} level, scorer {scorer.source})")
