"""`make console`: the console on SHOP_CONSOLE_ADDR (default 127.0.0.1:8080), calling the gateway at
SHOP_GATEWAY_ADDR (or the one `make run` serves, from build/stack.json)."""

from __future__ import annotations

import json
import logging
import os

import uvicorn

from libs.config import Addresses, ConsoleSettings, SecuritySettings, artifacts_dir
from services.console.app import ConsoleState, create_app
from services.console.gateway import Gateway

RUNNING = "build/stack.json"  # written by `make run` while it serves (tools/stack.py)
N_CUSTOMERS = 40


def gateway_address() -> str:
    if "SHOP_GATEWAY_ADDR" not in os.environ and os.path.exists(RUNNING):
        with open(RUNNING) as f:
            return json.load(f)["gateway"]
    return Addresses().gateway


def sample_customers() -> list[str]:
    """The customers with the most orders in the prepared data, for the page's customer picker."""
    from libs.catalog.store import load_dataset

    try:
        purchases = load_dataset(artifacts_dir()).purchases
    except Exception:  # noqa: BLE001 - no prepared data: the picker is a plain text field
        logging.getLogger(__name__).warning("no prepared dataset: the customer picker has no suggestions")
        return []
    return [str(u) for u in purchases.groupby("user_id")["invoice_no"].nunique().nlargest(N_CUSTOMERS).index]


def main() -> None:
    logging.basicConfig(level="INFO", format="%(asctime)s %(name)s %(message)s")
    settings, security = ConsoleSettings(), SecuritySettings()
    state = ConsoleState(
        Gateway(gateway_address(), security), settings.ab_report, sample_customers(), security.auth_token or ""
    )
    host, port = settings.addr.rsplit(":", 1)
    print(f"console on http://{settings.addr}/ (gateway {gateway_address()})", flush=True)
    uvicorn.run(create_app(state), host=host, port=int(port), log_level="warning")


if __name__ == "__main__":
    main()
