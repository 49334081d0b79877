"""Cleaning rules for the raw invoice lines: what counts as a sale of a product, and each product's title.

Pure functions on DataFrames (typed as `raw.read_raw` returns them). The rules, in order:

1. cancellations: InvoiceNo starting with "C" (they carry the negative quantities of the original lines);
2. non-positive Quantity (stock adjustments: "damaged", "found", "?") and non-positive UnitPrice (free or
   adjustment lines, "Adjust bad debt" invoices);
3. non-product codes (postage, carriage, discounts, fees, samples, manual lines, gift vouchers);
4. empty or stock-note descriptions ("damaged", "check", "?", "sold as set on dotcom").

Rows without a customer are kept here: they are real sales and count for item popularity. They are separated
from the behaviour graph (purchases of known customers) when the artifacts are built.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

# Non-product StockCodes, compared after strip + upper-case ("m" is "M", manual).
NON_PRODUCT_CODES = frozenset(
    {
        "POST",  # postage
        "DOT",  # dotcom postage
        "C2",  # carriage
        "M",  # manual line
        "D",  # discount
        "S",  # samples
        "B",  # adjust bad debt
        "BANK CHARGES",
        "AMAZONFEE",
        "CRUK",  # charity commission
        "PADS",  # "pads to match all cushions", a 0.001 placeholder
        "ADJUST",
        "ADJUST2",
        "TEST001",
        "TEST002",
    }
)
NON_PRODUCT_PREFIXES = ("GIFT_0001_",)  # gift vouchers

# Words that only appear in warehouse notes typed into Description. They are only looked for in descriptions that
# are not upper-case (product titles in this shop are upper-case: "WHITE HANGING HEART T-LIGHT HOLDER"), so a
# product called "... CARRIAGE CLOCK" or "DAMAGED ..." in capitals is never mistaken for a note.
_STOCK_NOTE_WORDS = re.compile(
    r"\b(?:damage\w*|check\w*|found|lost|missing|thrown|throw|wet|rusty|mould\w*|smashed|crushed|broken|cracked|"
    r"faulty|adjust\w*|sold|wrong\w*|incorrect\w*|credit\w*|sample\w*|showroom|display|amazon|ebay|dotcom|"
    r"mailout|counted|returned|given|test|unsaleable|label|barcode|mix|reverse|stock|manual|discount|"
    r"carriage|postage|commission|fee|charges|voucher|mia|destroyed|away|aside|rcvd|fix|order|image|mystery|dagamed|"
    r"breakages?|invc|error|marked|lewis)\b",
    re.IGNORECASE,
)


def normalise_code(codes: pd.Series) -> pd.Series:
    """StockCode as product id: stripped, upper-case ("85123a" and "85123A" are one product)."""
    return codes.astype("str").str.strip().str.upper()


def normalise_customer(ids: pd.Series) -> pd.Series:
    """CustomerID as user id: "17850.0" -> "17850"; empty stays NA."""
    return ids.str.strip().str.replace(r"\.0+$", "", regex=True).replace("", pd.NA)


def normalise_description(text: pd.Series) -> pd.Series:
    """Strip and collapse inner whitespace ("3 TRADITIONAl BISCUIT CUTTERS  SET" has two spaces)."""
    return text.str.strip().str.replace(r"\s+", " ", regex=True).replace("", pd.NA)


def is_non_product(codes: pd.Series) -> pd.Series:
    """True for postage, fees, discounts, vouchers... `codes` already normalised."""
    return codes.isin(NON_PRODUCT_CODES) | codes.str.startswith(NON_PRODUCT_PREFIXES)


def is_stock_note(text: pd.Series) -> pd.Series:
    """True for empty descriptions and warehouse notes ("damaged", "?", "Thrown away", "sold as set on dotcom").

    A description is a note when it has no letters, or when it is not written mostly in capitals and either has no
    capital at all or contains a note word. Mixed-case real titles ("Dr. Jam's Arouzer Stress Ball") are kept.
    """
    # Evaluated once per distinct description (a few thousand), not per line (half a million).
    text = text.fillna("")
    distinct = pd.Series(text.unique())
    notes = _is_stock_note_distinct(distinct)
    return text.map(dict(zip(distinct, notes))).astype(bool)


def _is_stock_note_distinct(text: pd.Series) -> pd.Series:
    upper = text.str.count(r"[A-Z]")
    lower = text.str.count(r"[a-z]")
    no_letters = (upper + lower) == 0
    mostly_lower = lower > upper
    note_word = text.str.contains(_STOCK_NOTE_WORDS)
    return no_letters | (mostly_lower & ((upper == 0) | note_word))


@dataclass(frozen=True)
class CleanReport:
    """How many raw lines each rule removed (in rule order), for the manifest."""

    raw_rows: int
    cancellations: int
    non_positive_quantity_or_price: int
    non_product_codes: int
    stock_notes_or_empty_description: int
    kept_rows: int
    kept_rows_with_customer: int

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def clean(raw: pd.DataFrame) -> tuple[pd.DataFrame, CleanReport]:
    """Apply the cleaning rules to typed raw lines.

    Returns lines with columns: invoice_no, product_id, description, quantity, unit_price, ts, user_id (NA for
    guests), country; and a CleanReport of what each rule removed. Input row order is kept.
    """
    df = pd.DataFrame(
        {
            "invoice_no": raw["InvoiceNo"].astype("str").str.strip(),
            "product_id": normalise_code(raw["StockCode"]),
            "description": normalise_description(raw["Description"]),
            "quantity": raw["Quantity"].astype("int64"),
            "unit_price": raw["UnitPrice"].astype("float64"),
            "ts": raw["InvoiceDate"],
            "user_id": normalise_customer(raw["CustomerID"]),
            "country": raw["Country"],
        }
    )
    n0 = len(df)
    df = df[~df["invoice_no"].str.upper().str.startswith("C")]
    n1 = len(df)
    df = df[(df["quantity"] > 0) & (df["unit_price"] > 0)]
    n2 = len(df)
    df = df[~is_non_product(df["product_id"])]
    n3 = len(df)
    df = df[~is_stock_note(df["description"])]
    n4 = len(df)
    report = CleanReport(
        raw_rows=n0,
        cancellations=n0 - n1,
        non_positive_quantity_or_price=n1 - n2,
        non_product_codes=n2 - n3,
        stock_notes_or_empty_description=n3 - n4,
        kept_rows=n4,
        kept_rows_with_customer=int(df["user_id"].notna().sum()),
    )
    return df, report


def canonical_titles(lines: pd.DataFrame) -> pd.Series:
    """One title per product: its most frequent description; ties go to the alphabetically first (deterministic).

    Returns a Series indexed by product_id, sorted by product_id.
    """
    counts = lines.groupby(["product_id", "description"], sort=True).size().rename("n").reset_index()
    # Stable sort: most frequent first, alphabetical among equals (groupby already sorted description ascending).
    counts = counts.sort_values(["product_id", "n"], ascending=[True, False], kind="stable")
    return counts.drop_duplicates("product_id").set_index("product_id")["description"].rename("title")
