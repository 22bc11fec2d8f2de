"""Run the service with uvicorn on 127.0.0.1:$PORT."""

from __future__ import annotations

import uvicorn

from app import settings
from app.main import app


def main() -> None:
    # log_config=None: uvicorn's loggers go through our JSON formatter.
    uvicorn.run(
        app,
        host=settings.HOST,
        port=settings.PORT,
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
