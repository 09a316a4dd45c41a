"""The ``decisiontrail`` command: serve, manage keys, verify, export."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from decisiontrail import apikeys, bundle, compliance, erasure, integrity, reports
from decisiontrail.apikeys import Scope
from decisiontrail.config import Settings
from decisiontrail.records import format_time
from decisiontrail.signing import Keyring, KeyringError, TrustRoot
from decisiontrail.state import ServiceState
from decisiontrail.verification import CheckpointError

app = typer.Typer(help="DecisionTrail: a tamper-evident audit trail for AI agents' decisions.")
keys_app = typer.Typer(help="API keys (stored hashed).")
signing_app = typer.Typer(help="Ed25519 signing keys.")
holds_app = typer.Typer(help="Legal holds on data subjects.")
app.add_typer(keys_app, name="keys")
app.add_typer(signing_app, name="signing-keys")
app.add_typer(holds_app, name="legal-holds")
console = Console()
errors = Console(stderr=True)
T = TypeVar("T")


def _run(work: Callable[[ServiceState], Awaitable[T]]) -> T:
    async def main() -> T:
        state = await ServiceState.open(Settings())
        try:
            return await work(state)
        finally:
            await state.close()

    return asyncio.run(main())


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=errors, transient=False,
    )  # fmt: skip


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="interface to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on")] = None,
) -> None:
    """Run the service (embedded storage unless configured otherwise)."""
    import uvicorn

    from decisiontrail.app import create_app
    from decisiontrail.logs import configure_logging
    from decisiontrail.store_workers import collect_garbage_rarely
    from decisiontrail.tracing import TracingConfigurationError, configure_tracing

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        configure_tracing()
    except TracingConfigurationError as exc:
        errors.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None

    async def first_look() -> tuple[bool, bool]:
        # One event loop for the whole look: remote SDK clients are bound to their loop.
        state = await ServiceState.open(settings)
        try:
            return state.created_signing_key, bool(await _list_keys(state))
        finally:
            await state.close()

    created, has_keys = asyncio.run(first_look())
    bind_host, bind_port = host or settings.host, port or settings.port
    console.print(f"[bold]DecisionTrail[/bold] on http://{bind_host}:{bind_port}")
    console.print(f"  data:        {settings.data_dir.resolve()}")
    console.print(f"  Genesis DB:  {settings.genesisdb_location}")
    console.print(f"  SapixDB:     {settings.sapixdb_location}")
    console.print(f"  signing key: {settings.key_directory}" + (" (new)" if created else ""))
    console.print(f"  console:     http://{bind_host}:{bind_port}/console", soft_wrap=True)
    if not has_keys:
        command = (
            f"{_own_command()} keys create --tenant {settings.default_tenant} "
            "--scope ingest --scope read --scope audit --scope erase"
        )
        # soft_wrap: the command is printed on one line, never broken where it would not paste.
        console.print("  No API keys yet. Create one (in another terminal, same directory):")
        console.print(f"    {command}", soft_wrap=True, markup=False, highlight=False)
    collect_garbage_rarely()
    # Our JSON logging stays in place (log_config=None) and our access log is the only one: it
    # records route templates, where uvicorn's would record raw paths, queries and addresses.
    uvicorn.run(
        create_app(settings), host=bind_host, port=bind_port, log_level="warning",
        log_config=None, access_log=False,
    )  # fmt: skip


def _own_command() -> str:
    """How to run this command from the current directory: the script beside the running
    Python (``.venv/bin/decisiontrail``), which need not be on PATH."""
    script = Path(sys.executable).parent / "decisiontrail"
    if not script.exists():
        return "decisiontrail"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


async def _list_keys(state: ServiceState) -> list[Any]:
    return await state.keys.list()


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option(help="the tenant the key belongs to")],
    scope: Annotated[list[Scope], typer.Option(help="repeat for several scopes")],
    label: Annotated[str, typer.Option(help="what the key is for")] = "",
    expires_in_days: Annotated[float | None, typer.Option(min=0)] = None,
    rate: Annotated[float | None, typer.Option(help="requests a second", min=0)] = None,
) -> None:
    """Create an API key; it is printed once and stored only as a hash."""
    try:
        apikeys.check_tenant(tenant)
    except apikeys.InvalidTenantName as exc:
        errors.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    expires = datetime.now(UTC) + timedelta(days=expires_in_days) if expires_in_days else None

    async def work(state: ServiceState) -> tuple[str, Any]:
        return await state.keys.create(
            tenant=tenant, scopes=frozenset(scope), label=label, expires_at=expires,
            rate_limit_per_second=rate,
        )  # fmt: skip

    text, key = _run(work)
    errors.print(f"key {key.key_id} for tenant {tenant!r} ({', '.join(sorted(key.scopes))}):")
    print(text)
    errors.print("[yellow]Store it now: it cannot be shown again.[/yellow]")


@keys_app.command("list")
def keys_list(tenant: Annotated[str | None, typer.Option()] = None) -> None:
    """List API keys (never their secrets)."""

    async def work(state: ServiceState) -> list[Any]:
        return await state.keys.list(tenant)

    table = Table()
    table.add_column("key id", no_wrap=True, min_width=16)  # whole: `keys revoke` needs it
    for column in ("tenant", "label", "scopes", "created", "expires", "revoked"):
        table.add_column(column)
    for key in _run(work):
        view = key.public()
        table.add_row(view["key_id"], view["tenant"], view["label"], ", ".join(view["scopes"]),
                      view["created_at"], str(view["expires_at"] or "—"),
                      str(view["revoked_at"] or "—"))  # fmt: skip
    console.print(table)


@holds_app.command("list")
def legal_holds_list(
    tenant: Annotated[str, typer.Option(help="the tenant whose holds to list")],
) -> None:
    """List the legal holds in force, by the data subject's random key (never their id)."""

    async def work(state: ServiceState) -> list[dict[str, str]]:
        return await erasure.legal_holds(ledger=state.ledger, tenant=tenant)

    holds = _run(work)
    table = Table(title=f"legal holds in {tenant}: {len(holds)}")
    table.add_column("subject key", no_wrap=True)
    table.add_column("placed at", no_wrap=True)
    for hold in holds:
        table.add_row(hold["subject_key"], hold["placed_at"])
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke an API key at once."""

    async def work(state: ServiceState) -> Any:
        return await state.keys.revoke(key_id)

    if _run(work) is None:
        errors.print(f"no key {key_id}")
        raise typer.Exit(1)
    console.print(f"revoked {key_id}")


@signing_app.command("rotate")
def signing_rotate() -> None:
    """Retire the current signing key and start a new one (old signatures stay valid)."""
    settings = Settings()
    keyring, _ = Keyring.load_or_create(settings.key_directory, settings.log_origin)
    new = keyring.rotate(settings.key_directory)
    console.print(f"new signing key {new.key_id}; restart the service to use it")


@signing_app.command("export")
def signing_export(
    output: Annotated[Path | None, typer.Option(help="write here instead of stdout")] = None,
) -> None:
    """Export the trust root: every public key with its validity window."""
    settings = Settings()
    keyring, _ = Keyring.load_or_create(settings.key_directory, settings.log_origin)
    text = json.dumps(keyring.trust.to_json(), indent=2)
    if output:
        output.write_text(text + "\n")
    else:
        print(text)


def _trust_from(
    public_key: Path | None, trust_root: Path | None, note_name: str
) -> TrustRoot | None:
    try:
        if trust_root is not None:
            return TrustRoot.from_json(json.loads(trust_root.read_text()))
        if public_key is not None:
            return TrustRoot.from_public_key(public_key.read_text(), note_name)
    except (OSError, ValueError, KeyringError) as exc:
        errors.print(f"[red]cannot read the key: {exc}[/red]")
        raise typer.Exit(2) from None
    return None


@app.command()
def verify(
    tenant: Annotated[str | None, typer.Option(help="tenant to verify (online)")] = None,
    bundle_path: Annotated[
        Path | None, typer.Option("--bundle", help="verify an export offline")
    ] = None,
    trusted_checkpoint: Annotated[
        Path | None, typer.Option(help="a checkpoint note you trust")
    ] = None,
    public_key: Annotated[
        Path | None, typer.Option(help="Ed25519 public key (PEM or base64)")
    ] = None,
    trust_root: Annotated[Path | None, typer.Option(help="exported trust root (JSON)")] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="verify a signed compliance report (JSON)")
    ] = None,
    bundled_key: Annotated[
        bool,
        typer.Option(
            "--trust-bundled-key",
            help="accept a bundle checked only against the key inside it (internal consistency)",
        ),
    ] = False,
) -> None:
    """Verify records, chains, signatures and checkpoints; exit 1 on the first problem.

    Offline (``--bundle``, ``--report``) a result means something only against a trust root
    you hold independently (``--public-key`` or ``--trust-root``); without one, a bundle is
    checked against its own key, which proves only internal consistency: exit 3 unless
    ``--trust-bundled-key``."""
    pinned = trusted_checkpoint.read_text() if trusted_checkpoint else None
    if report is not None:
        _verify_report(report, public_key, trust_root)
        return
    if bundle_path is not None:
        _verify_bundle(bundle_path, pinned, public_key, trust_root, bundled_key)
        return
    settings = Settings()
    name = tenant or settings.default_tenant

    async def work(state: ServiceState) -> dict[str, Any]:
        trust = _trust_from(public_key, trust_root, state.keyring.note_name) or state.keyring.trust
        try:
            return await integrity.verify_tenant(
                ledger=state.ledger, trust=trust, tenant=name, trusted_note=pinned
            )
        except CheckpointError as exc:
            return {"ok": False, "first_problem": {"reason": "bad_checkpoint", "detail": str(exc)}}

    result = _run(work)
    if result.get("ok") and not result.get("records_checked"):
        print(json.dumps(result, indent=2))
        errors.print(f"[red]tenant {name!r} has no records: nothing was verified[/red]")
        raise typer.Exit(1)
    _finish(result)


UNTRUSTED_EXIT = 3  # verified only against a key the verified file itself carries


def _verify_report(path: Path, public_key: Path | None, trust_root: Path | None) -> None:
    trust = _trust_from(public_key, trust_root, "")
    if trust is None:
        errors.print("[red]a report is verified against a trust root you hold: give "
                     "--trust-root keyring.json or --public-key[/red]")  # fmt: skip
        raise typer.Exit(2)
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        errors.print(f"[red]cannot read {path}: {exc}[/red]")
        raise typer.Exit(2) from None
    _finish(compliance.verify_signed_report(document=document, trust=trust))


def _verify_bundle(
    path: Path,
    pinned: str | None,
    public_key: Path | None,
    trust_root: Path | None,
    bundled_key: bool,
) -> None:
    try:
        header = next(bundle.read_bundle(path), {})
    except bundle.BundleError as exc:
        hint = " (a compliance report? use --report)" if path.suffix == ".json" else ""
        errors.print(f"[red]not an export bundle{hint}: {exc}[/red]")
        raise typer.Exit(2) from None
    trust = _trust_from(public_key, trust_root, str(header.get("note_name", "")))
    with _progress() as progress:
        task = progress.add_task("verifying", total=int(header.get("records", 0)) or None)
        try:
            result = bundle.verify_bundle(
                path, trust=trust, trusted_checkpoint=pinned,
                progress=lambda n: progress.update(task, completed=n),
            )  # fmt: skip
        except (bundle.BundleError, KeyringError) as exc:
            errors.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from None
    answer = result.to_json()
    if result.used_bundled_trust_root:
        answer["trust"] = "bundled_key_only"
        errors.print(
            "[yellow]no --public-key or --trust-root: checked against the key inside the "
            "bundle, which proves only that the bundle is internally consistent[/yellow]"
        )
        if answer.get("ok") and not bundled_key:
            print(json.dumps(answer, indent=2))
            errors.print("[red]not verified against an independent trust root "
                         "(--trust-bundled-key accepts that)[/red]")  # fmt: skip
            raise typer.Exit(UNTRUSTED_EXIT)
    _finish(answer)


def _finish(report: dict[str, Any]) -> None:
    print(json.dumps(report, indent=2))
    if not report.get("ok"):
        problem = report.get("first_problem") or {}
        errors.print(f"[red]FAILED: {problem.get('reason')}: {problem.get('detail')}[/red]")
        raise typer.Exit(1)
    errors.print("[green]verified[/green]")


@app.command()
def export(
    output: Annotated[Path, typer.Option(help="bundle file (.jsonl or .jsonl.gz)")],
    tenant: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Write a self-contained bundle: records, checkpoints and public keys."""
    settings = Settings()
    name = tenant or settings.default_tenant

    async def work(state: ServiceState) -> int:
        checkpoint = await state.ledger.tree.issue_checkpoint(name)  # the bundle's newest
        notes = await state.ledger.tree.stored_checkpoints(name)

        async def records() -> Any:
            async for receipt in state.ledger.reads.records(name):
                yield receipt.record, receipt.log_index

        with _progress() as progress:
            task = progress.add_task("exporting", total=checkpoint.size)
            return await bundle.export(
                output, tenant=name, origin=state.ledger.tree.checkpoint_origin(name),
                trust=state.keyring.trust, exported_at=format_time(datetime.now(UTC)),
                notes=notes, records=records(), count=checkpoint.size,
                progress=lambda n: progress.update(task, completed=n),
            )  # fmt: skip

    written = _run(work)
    errors.print(f"wrote {written} records to {output}")


class ReportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    HTML = "html"


@app.command()
def report(
    output: Annotated[Path, typer.Option(help="file to write (- for standard output)")],
    tenant: Annotated[str | None, typer.Option()] = None,
    period_from: Annotated[
        datetime | None, typer.Option("--from", help="period start (UTC); default 30 days ago")
    ] = None,
    period_to: Annotated[
        datetime | None, typer.Option("--to", help="period end (UTC); default now")
    ] = None,
    agent: Annotated[str | None, typer.Option(help="only this agent's decisions")] = None,
    format: Annotated[ReportFormat, typer.Option(help="json, csv or html")] = ReportFormat.HTML,
) -> None:
    """Write the signed compliance report for a period (as GET /v1/reports/compliance)."""
    settings = Settings()
    name = tenant or settings.default_tenant
    end = (period_to or datetime.now(UTC) + timedelta(seconds=1)).replace(tzinfo=UTC)
    start = (period_from or end - timedelta(days=30)).replace(tzinfo=UTC)
    if start >= end:
        errors.print("[red]--from must be before --to[/red]")
        raise typer.Exit(2)

    async def work(state: ServiceState) -> tuple[Any, dict[str, str]]:
        built = await compliance.build_report(
            ledger=state.ledger, keyring=state.keyring, tenant=name, period_from=start,
            period_to=end, agent=agent, retention_days=settings.retention_days,
        )  # fmt: skip
        return built, compliance.sign_report(reports.render_json(built), state.keyring)

    built, signature = _run(work)
    if format is ReportFormat.JSON:
        text = json.dumps({"report": reports.render_json(built), "signature": signature}, indent=2)
    elif format is ReportFormat.CSV:
        text = reports.render_csv(built)
    else:
        text = reports.render_html(built)
    if str(output) == "-":
        print(text)
    else:
        output.write_text(text, encoding="utf-8")
        errors.print(f"wrote the {format.value} report to {output}")
    errors.print(f"report sha256 {signature['sha256']} signed by {signature['key_id']}")


def main() -> None:
    app(prog_name="decisiontrail")


if __name__ == "__main__":
    main()
