"""A Flask application as its users write it -- Flask-Login, Flask-SQLAlchemy with its
default connection pool on an sqlite file, ``async def`` views that query the database
and read ``current_user`` -- served by real servers in ``tests/test_blocking_servers.py``.

``ASYNC_STEPS`` comes from the environment (``BLOCKING_ASYNC_STEPS``), and the database
file and the pool's timeout too. Written against ``flask``: ``install_as_flask()`` comes
first, before any extension is imported.
"""

from __future__ import annotations

import os

import ctxflask

ctxflask.install_as_flask()

import anyio  # noqa: E402
from flask import abort  # noqa: E402
from flask import Flask  # noqa: E402
from flask import request  # noqa: E402
from flask_login import current_user  # noqa: E402
from flask_login import login_required  # noqa: E402
from flask_login import login_user  # noqa: E402
from flask_login import LoginManager  # noqa: E402
from flask_login import UserMixin  # noqa: E402
from flask_sqlalchemy import SQLAlchemy  # noqa: E402
from sqlalchemy import ForeignKey  # noqa: E402
from sqlalchemy import select  # noqa: E402
from sqlalchemy.orm import Mapped  # noqa: E402
from sqlalchemy.orm import mapped_column  # noqa: E402

USERS = ("ann", "bob", "cid", "dee")

db = SQLAlchemy()


class User(db.Model, UserMixin):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(unique=True)


class Note(db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    text: Mapped[str]


app = Flask(__name__)
app.config.update(
    SECRET_KEY="blocking",
    SQLALCHEMY_DATABASE_URI=os.environ.get("BLOCKING_DATABASE", "sqlite://"),
    # The default pool (5 + 10 overflow), with a short wait so a stalled run ends soon.
    SQLALCHEMY_ENGINE_OPTIONS={
        "pool_timeout": float(os.environ.get("BLOCKING_POOL_TIMEOUT", "30"))
    },
    ASYNC_STEPS=os.environ.get("BLOCKING_ASYNC_STEPS", "loop"),
    LOOP_BLOCK_WARNING=float(os.environ.get("BLOCKING_LOOP_BLOCK_WARNING", "0.1")),
)
db.init_app(app)
login_manager = LoginManager(app)


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id))


@app.before_serving
def create_data() -> None:
    db.create_all()
    if db.session.execute(select(User)).first() is None:
        for name in USERS:
            user = User(name=name)
            db.session.add(user)
            db.session.flush()
            db.session.add_all(
                Note(user_id=user.id, text=f"{name} {i}") for i in range(3)
            )
        db.session.commit()


@app.post("/login/<name>")
def login(name: str) -> str:
    user = db.session.execute(select(User).filter_by(name=name)).scalar_one()
    login_user(user)
    return "in"


@app.get("/notes")
async def notes() -> dict[str, object]:
    # current_user loads the user here, in the async view: a blocking pool checkout.
    if not current_user.is_authenticated:
        abort(401)
    return await user_notes()


@app.get("/guarded")
@login_required  # a sync wrapper: it loads the user, then calls ensure_sync(view)
async def guarded() -> dict[str, object]:
    return await user_notes()


async def user_notes() -> dict[str, object]:
    rows = db.session.execute(select(Note).filter_by(user_id=current_user.id))
    texts = [note.text for note in rows.scalars()]
    # The connection stays checked out until teardown, across this wait for an API.
    await anyio.sleep(0.01)
    return {"user": current_user.name, "notes": texts, "id": request.args["id"]}
