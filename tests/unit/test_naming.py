from domain.naming import is_generic, rename_decision, similarity, title_from


def test_generic_names_are_renamed_from_the_context() -> None:
    rename, name, score = rename_decision(
        "Assistant Session", "I want to set up a SaaS lead gen campaign for the US market"
    )
    assert rename
    assert name == "SaaS Lead Gen Campaign US Market"
    assert score == 0.0


def test_a_name_that_matches_the_context_is_kept() -> None:
    rename, name, score = rename_decision(
        "Marketing Campaign Setup", "continue the marketing campaign setup with new banners"
    )
    assert not rename
    assert name == "Marketing Campaign Setup"
    assert score == 1.0


def test_a_name_the_context_drifted_away_from_is_renamed() -> None:
    rename, name, score = rename_decision("Marketing Campaign Setup", "debug the payment webhook")
    assert rename
    assert name == "Debug Payment Webhook"
    assert score < 0.25


def test_helpers() -> None:
    assert is_generic("  new instance ")
    assert not is_generic("Payroll export")
    assert similarity("alpha beta", "beta gamma") == 0.5
    assert title_from("the and of") == "Assistant Session"
    assert len(title_from("word " * 100)) <= 60
