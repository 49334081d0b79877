"""Faithful explanations by counterfactual masking against the served rankers (see libs/explain/page.py)."""

from libs.explain.evidence import Piece, history_pieces, items_read, pieces_for, term_drops, term_pieces
from libs.explain.masking import Mask, mask_one, masked_scenarios
from libs.explain.page import METHOD, Attribution, attribute, explain_items, explain_page
from libs.explain.wording import confidence, sentence
