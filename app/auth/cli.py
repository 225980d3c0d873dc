"""`studio create-admin`: the first way into a fresh install."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select

from app.audit import service as audit
from app.audit.service import Action, AuditContext
from app.auth import passwords
from app.auth.models import User
from app.auth.schemas import Email, FullName, Password
from app.core.commands import command, load_settings
from app.core.db import create_engine, create_sessionmaker
from app.rbac import service as rbac


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--email", required=True)
    p.add_argument("--full-name", default=None)


def _password() -> str:
    if value := os.environ.get("STUDIO_ADMIN_PASSWORD"):
        return value
    if not sys.stdin.isatty():
        raise SystemExit("Set STUDIO_ADMIN_PASSWORD or run in a terminal to be prompted.")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Again: "):
        raise SystemExit("Passwords do not match.")
    return first


@command("create-admin", "create an administrator, or make an existing account one", _args)
def create_admin(ns: argparse.Namespace) -> int:
    settings = load_settings()
    try:
        email = TypeAdapter(Email).validate_python(ns.email)
        full_name = (
            None if ns.full_name is None else TypeAdapter(FullName).validate_python(ns.full_name)
        )
        password = TypeAdapter(Password).validate_python(_password())
    except ValidationError as exc:
        print(f"Invalid input: {exc.errors()[0]['msg']}", file=sys.stderr)
        return 2

    async def run() -> str:
        engine = create_engine(settings)
        try:
            async with create_sessionmaker(engine)() as db:
                user = (
                    await db.execute(select(User).where(User.email == email))
                ).scalar_one_or_none()
                admin_role = await rbac.roles_named(db, ["admin"])
                verb = "promoted"
                if user is None:
                    verb = "created"
                    user = User(email=email, full_name=full_name, roles=[])
                    db.add(user)
                user.password_hash = await passwords.hash_password(password)
                user.is_active = True
                user.roles = sorted({*user.roles, *admin_role}, key=lambda r: r.name)
                await db.flush()
                await audit.record(
                    db,
                    AuditContext(user_agent="studio-cli").by(user.id, email),
                    Action.ADMIN_CREATE,
                    target=str(user.id),
                    details={"via": "cli", "result": verb},
                )
                await db.commit()
                return verb
        finally:
            await engine.dispose()

    verb = asyncio.run(run())
    print(f"administrator {email} {verb}")
    return 0
