"""`studio audit purge`: keep AUDIT_RETENTION_DAYS of audit events."""

from __future__ import annotations

import argparse
import asyncio

from app.audit import service
from app.audit.service import Action, AuditContext
from app.core.commands import command, load_settings
from app.core.db import create_engine, create_sessionmaker


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("purge",))
    p.add_argument("--days", type=int, default=None, help="override AUDIT_RETENTION_DAYS")


@command("audit", "audit log maintenance: `studio audit purge`", _args)
def audit_command(ns: argparse.Namespace) -> int:
    settings = load_settings()
    days = ns.days or settings.audit_retention_days
    if days < 1:
        raise SystemExit("--days must be at least 1")

    async def run() -> int:
        engine = create_engine(settings)
        try:
            async with create_sessionmaker(engine)() as db:
                purged = await service.purge(db, days)
                await service.record(
                    db,
                    AuditContext(user_agent="studio-cli"),
                    Action.AUDIT_PURGE,
                    details={"retention_days": days, "purged": purged},
                )
                await db.commit()
                return purged
        finally:
            await engine.dispose()

    print(f"purged {asyncio.run(run())} audit events older than {days} days")
    return 0
