"""`cotdistill teacher generate`: a rationale set written by a teacher model.
"""

from __future__ import annotations

from pathlib import Path

import click

from cotdistill.cli.common import _fail, _pairs, _set_line, science


@science.group()
def teacher() -> None:
    """Generate rationale sets with a teacher model (local or an OpenAI-compatible endpoint)."""


@teacher.command()
@click.argument("dataset")
@click.option("--split", "splits", multiple=True, default=("train",), show_default=True,
              help="Split to generate for (repeatable).")
@click.option("--option", "options", multiple=True, help="Dataset option KEY=VALUE (repeatable).")
@click.option("--n", "n", type=click.IntRange(min=1), default=None, help="Only the first N examples of each split.")
@click.option("--model", default="smollm2-135m", show_default=True,
              help="Local: tiny, smollm2-135m, a hub id or a folder. HTTP: the served model name.")
@click.option("--base-url", default=None, help="An OpenAI-compatible server: the teacher is HTTP.")
@click.option("--api", type=click.Choice(["completions", "chat"]), default="completions",
              show_default=True)
@click.option("--api-key-env", default=None, help="NAME of the environment variable with the key.")
@click.option("--concurrency", type=click.IntRange(1, 256), default=4, show_default=True,
              help="HTTP requests in flight.")
@click.option("--timeout", type=click.FloatRange(0, 86_400, min_open=True), default=60.0, show_default=True,
              help="Seconds per HTTP request, in total (connecting, waiting and reading the answer).")
@click.option("--device", default=None, help="Local teacher: cpu, cuda … (default: cuda if any).")
@click.option("--template-file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Your few-shot template ({question}, {choices}, {gold_hint}, {gold}).")
@click.option("--rationalize", is_flag=True, help="Tell the teacher the gold answer.")
@click.option("--max-new-tokens", type=click.IntRange(1, 32_768), default=256, show_default=True)
@click.option("--temperature", type=click.FloatRange(0, 100), default=0.0, show_default=True, help="0 = greedy.")
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True)
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True)
@click.option("--batch-size", type=click.IntRange(1, 65_536), default=8, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Set folder (default: $COTDISTILL_HOME/rationale_sets/<dataset>-<model>).")
@click.option("--no-cache", is_flag=True, help="Do not reuse or store cached completions.")
def generate(dataset, splits, options, n, model, base_url, api, api_key_env, concurrency, timeout,
             device, template_file, rationalize, max_new_tokens, temperature, top_p, seed,
             batch_size, out, no_cache) -> None:
    """Write a rationale set for DATASET; rerun the same command to resume after a stop."""
    from cotdistill.data import load_examples
    from cotdistill.data.rationale_set import sets_root
    from cotdistill.errors import DataError
    from cotdistill.teachers import (Decoding, TeacherError, generate_rationales, load_teacher,
                                     make_prompt)

    from cotdistill.teachers.access import key_problem, normalise_url
    opts = _pairs(options, "--option")
    if api_key_env and (problem := key_problem(api_key_env, named_by_user=True)):
        _fail(f"--api-key-env: {problem}")                   # before anything is read or written
    if base_url:
        try:
            normalise_url(base_url)
        except TeacherError as e:
            _fail(f"--base-url: {e}")
    spec = ({"kind": "http", "base_url": base_url, "model": model, "api": api,
             "api_key_env": api_key_env, "concurrency": concurrency, "timeout": timeout}
            if base_url else {"kind": "local", "model": model, "device": device})
    result = None
    try:
        examples = {s: load_examples(dataset, s, **opts)[:n] for s in splits}
        kind = next(iter(examples.values()))[0].kind
        prompt = make_prompt(kind, template_file=template_file, rationalize=rationalize)
        decoding = Decoding(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                            seed=seed)
        slug = model.replace("/", "_") + ("-rationalized" if rationalize else "")
        target = Path(out) if out else sets_root() / f"{dataset.replace('/', '_')}-{slug}"
        click.echo(f"teacher {model} on {dataset} ({', '.join(splits)}) -> {target}")
        result = generate_rationales(examples, load_teacher(spec), prompt, decoding, target,
                                     batch_size=batch_size, use_cache=not no_cache,
                                     dataset={"name": dataset, "options": opts, "n": n},
                                     progress=_generation_printer())
    except KeyboardInterrupt:
        _fail("interrupted; finished examples are kept: rerun the same command to resume")
    except (DataError, TeacherError, ValueError) as e:
        _fail(str(e))
    if result.set_path is None:
        failed = "; ".join(f"{k}: {v}" for k, v in list(result.failed.items())[:3])
        _fail(f"{len(result.failed)} examples failed ({failed}); rerun the same command to retry "
              f"them, finished examples are kept")
    click.echo(_set_line(result.set_path))


def _generation_printer():
    def on_event(e: dict) -> None:
        accuracy = "n/a" if e["teacher_accuracy"] is None else f"{e['teacher_accuracy']:.3f}"
        click.echo(f"  {e['done']}/{e['total']} · teacher accuracy {accuracy} · {e['unparsed']} "
                   f"unparsed · {e['failed']} failed · {e['cache_hits']} from cache", err=True)
    return on_event
