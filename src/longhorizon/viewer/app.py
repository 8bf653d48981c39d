"""The viewer's web app (Starlette): server-rendered pages over one run, or two to compare.

Pages are rendered on the server with Jinja2 and autoescaping on, so every text a model or a
tool wrote reaches the browser escaped; the only script is a small static one that copies
data attributes into the token detail panel with `textContent`. Every file name that comes
in a request goes through `RunFiles.resolve` (see paths.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from longhorizon import __version__
from longhorizon.report.doc import VIEWER_NAV_HIDDEN, VIEWER_NAV_SHOWN
from longhorizon.viewer.compare import compare_items
from longhorizon.viewer.conversation import conversation
from longhorizon.viewer.heatmap import heat_cells
from longhorizon.viewer.listing import Filters
from longhorizon.viewer.paths import OutsideRun
from longhorizon.viewer.state import NotFound, RunState, ViewerState
from longhorizon.viewer.synth import list_tasks, reasons, synth_task
from longhorizon.viewer.tokens import sequence_view

__all__ = ["PAGE_SIZE", "create_app"]

PAGE_SIZE = 50
STATUSES = ("COMPLETED", "TRUNCATED", "FAILED")  # ABORTED episodes are retried, never stored
TEXT_FILES = {".json", ".jsonl", ".yaml", ".yml", ".md", ".txt", ".log"}


def _int(request: Request, name: str) -> int | None:
    value = request.query_params.get(name, "").strip()
    if not value:
        return None
    if not value.lstrip("-").isdigit():
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return int(value)


def _filters(request: Request) -> Filters:
    q = request.query_params
    return Filters(
        domain=q.get("domain", ""),
        status=q.get("status", ""),
        verdict=q.get("verdict", ""),
        reason=q.get("reason", ""),
        min_turns=_int(request, "min_turns"),
        max_turns=_int(request, "max_turns"),
        min_tools=_int(request, "min_tools"),
        max_tools=_int(request, "max_tools"),
    )


class Pages:
    """The route handlers, sharing the state and the template environment."""

    def __init__(self, state: ViewerState) -> None:
        self.state = state
        self.env = Environment(
            loader=PackageLoader("longhorizon.viewer", "templates"), autoescape=True
        )

    def render(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        run = context.get("run")
        runq = f"&run={run.name}" if isinstance(run, RunState) and run.name != "run" else ""
        html = self.env.get_template(name).render(version=__version__, runq=runq, **context)
        return HTMLResponse(html, status_code=status)

    def run(self, request: Request) -> RunState:
        return self.state.run(request.query_params.get("run", "run"))

    # ---- overview and lists --------------------------------------------------------------
    async def index(self, request: Request) -> Response:
        run = self.run(request)
        stages = _stages(run.root)
        return self.render("index.html.jinja", run=run, stages=stages, other=self._other())

    def _other(self) -> RunState | None:
        return self.state.runs.get("other")

    async def trajectories(self, request: Request) -> Response:
        run = self.run(request)
        q = request.query_params
        if q.get("store"):
            self.state.files.resolve(q["store"], run.name)
        stores = run.layout.trajectory_stores()
        chosen = [
            s
            for s in stores
            if (not q.get("stage") or s.stage == q["stage"])
            and (not q.get("split") or s.split == q["split"])
            and (not q.get("store") or s.ref == run.store(q["store"]).ref)
        ]
        filters = _filters(request)
        page_no = max(1, _int(request, "page") or 1)
        page = run.lists.page(
            [s.ref for s in chosen], filters, (page_no - 1) * PAGE_SIZE, PAGE_SIZE
        )
        return self.render(
            "trajectories.html.jinja",
            run=run,
            stores=stores,
            chosen=chosen,
            filters=filters,
            page=page,
            page_no=page_no,
            query=dict(q),
            statuses=STATUSES,
            stages=sorted({s.stage for s in stores}),
            splits=sorted({s.split for s in stores}),
            domains=sorted({s.domain for s in stores if s.domain}),
        )

    # ---- one episode ---------------------------------------------------------------------
    async def episode(self, request: Request) -> Response:
        run = self.run(request)
        q = request.query_params
        store = q.get("store", "")
        self.state.files.resolve(store, run.name)
        traj = run.trajectory(store, q.get("id", ""), q.get("at", ""))
        return self.render(
            "episode.html.jinja",
            run=run,
            store=run.store(store),
            traj=traj,
            at=q.get("at", ""),
            entries=conversation(traj),
            sequences=len(traj.token_sequences()),
        )

    async def tokens(self, request: Request) -> Response:
        run = self.run(request)
        q = request.query_params
        store = q.get("store", "")
        self.state.files.resolve(store, run.name)
        traj = run.trajectory(store, q.get("id", ""), q.get("at", ""))
        count = len(traj.token_sequences())
        index = _int(request, "seq") or 0
        if not 0 <= index < count:
            raise NotFound(f"sequence {index} of {traj.id!r}: it has {count}")
        view = sequence_view(traj, index, run.decoder)
        monitors = run.monitors.get(traj.id, index) if store == "distill/rollouts" else None
        color = q.get("color", "kl")
        heat = heat_cells(view, traj, monitors, run.decoder, color) if monitors else None
        return self.render(
            "tokens.html.jinja",
            run=run,
            store=run.store(store),
            traj=traj,
            at=q.get("at", ""),
            view=view,
            count=count,
            monitors=monitors,
            color=color,
            heat=heat,
            darkest=max((h.value for h in heat or [] if h.value is not None), default=0.0),
            decoded=run.decoder.path is not None,
        )

    # ---- synthesis -----------------------------------------------------------------------
    def _kag(self, run: RunState, domain: str) -> Path:
        if domain not in run.layout.synth_domains:
            raise NotFound(f"no synthesis output for domain {domain!r} in this run")
        return self.state.files.resolve(f"synth/{domain}/kag.db", run.name)

    async def tasks(self, request: Request) -> Response:
        run = self.run(request)
        q = request.query_params
        domain = q.get("domain") or (run.layout.synth_domains or ("",))[0]
        db = self._kag(run, domain)
        page_no = max(1, _int(request, "page") or 1)
        rows, total = list_tasks(
            db,
            domain,
            q.get("status", ""),
            q.get("reason", ""),
            (page_no - 1) * PAGE_SIZE,
            PAGE_SIZE,
        )
        return self.render(
            "tasks.html.jinja",
            run=run,
            domain=domain,
            rows=rows,
            total=total,
            page_no=page_no,
            query=dict(q),
            reasons=reasons(db, domain),
            page_size=PAGE_SIZE,
        )

    async def task(self, request: Request) -> Response:
        run = self.run(request)
        q = request.query_params
        domain = q.get("domain", "")
        found = synth_task(self._kag(run, domain), q.get("id", ""))
        if found is None:
            raise NotFound(f"no task {q.get('id', '')!r} in synth/{domain}/kag.db")
        store = f"synth/{domain}/trajectories"
        return self.render(
            "task.html.jinja", run=run, domain=domain, t=found, store=run.layout.store(store)
        )

    # ---- comparison ----------------------------------------------------------------------
    async def compare(self, request: Request) -> Response:
        q = request.query_params
        a_run = self.state.run(q.get("a_run", "run"))
        b_run = self.state.run(q.get("b_run", "run"))
        bench, a, b = q.get("bench", ""), q.get("a", ""), q.get("b", "")
        options = sorted({(e.bench, e.stage) for r in (a_run, b_run) for e in r.layout.evals})
        pairs = None
        if bench and a and b:
            a_dir = self.state.files.resolve(f"eval/{a}/{bench}", a_run.name)
            b_dir = self.state.files.resolve(f"eval/{b}/{bench}", b_run.name)
            if not a_dir.is_dir() or not b_dir.is_dir():
                raise NotFound(f"{bench}: no evaluation of {a!r} and {b!r} to compare")
            pairs = compare_items(a_dir, b_dir)
        return self.render(
            "compare.html.jinja",
            bench=bench,
            a=a,
            b=b,
            a_run=a_run,
            b_run=b_run,
            options=options,
            pairs=pairs,
            runs=self.state.runs,
        )

    # ---- files ---------------------------------------------------------------------------
    async def report(self, request: Request) -> Response:
        run = self.run(request)
        path = self.state.files.resolve("report/report.html", run.name)
        if not path.exists():
            raise NotFound("this run has no report (longhorizon report RUN_DIR writes one)")
        page = path.read_text(encoding="utf-8").replace(VIEWER_NAV_HIDDEN, VIEWER_NAV_SHOWN)
        return HTMLResponse(page)  # the report's viewer links, shown now that the viewer runs

    async def raw(self, request: Request) -> Response:
        run = self.run(request)
        rel = request.path_params["path"]
        path = self.state.files.resolve(rel, run.name)
        if not path.is_file():
            raise NotFound(f"no file {rel!r} in this run")
        if path.suffix not in TEXT_FILES and path.suffix != ".png":
            raise NotFound(f"{rel!r}: only text files and images are served")
        media = "image/png" if path.suffix == ".png" else "text/plain; charset=utf-8"
        return FileResponse(path, media_type=media)

    async def ping(self, request: Request) -> Response:
        return JSONResponse({"viewer": "longhorizon", "version": __version__})


def _stages(root: Path) -> dict[str, Any]:
    path = root / "stages.json"
    if not path.exists():
        return {}
    try:
        return dict(json.loads(path.read_text()).get("stages", {}))
    except (json.JSONDecodeError, AttributeError):
        return {}


def create_app(state: ViewerState) -> Starlette:
    pages = Pages(state)

    def guarded(handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except OutsideRun as exc:
                return pages.render("error.html.jinja", 403, title="Refused", message=str(exc))
            except (NotFound, ValueError) as exc:
                return pages.render("error.html.jinja", 404, title="Not found", message=str(exc))

        return endpoint

    routes = [
        Route("/", guarded(pages.index)),
        Route("/trajectories", guarded(pages.trajectories)),
        Route("/episode", guarded(pages.episode)),
        Route("/tokens", guarded(pages.tokens)),
        Route("/tasks", guarded(pages.tasks)),
        Route("/task", guarded(pages.task)),
        Route("/compare", guarded(pages.compare)),
        Route("/report", guarded(pages.report)),
        Route("/raw/{path:path}", guarded(pages.raw)),
        Route("/api/ping", pages.ping),
    ]
    return Starlette(routes=routes)
