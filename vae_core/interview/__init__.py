"""Interview preparation: the question bank over every lesson and the flashcard drill (lesson 13).

    from vae_core.interview import load_bank
    bank = load_bank()                 # every question, validated
    bank.select(lessons=["04"], topics=["blurry-samples"])

`vae-course drill` runs a spaced-repetition session over the bank in the terminal; `drill.DrillWidget`
does the same inside a notebook.
"""
from .bank import KINDS, TOPICS, Bank, BankError, Question, load_bank

__all__ = ["KINDS", "TOPICS", "Bank", "BankError", "Question", "load_bank"]
