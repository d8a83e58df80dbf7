"""The part of the Adaptive Card 1.4 schema our cards use, as a JSON Schema (draft 2020-12).

Written from the Adaptive Cards schema explorer (adaptivecards.io/explorer) for TextBlock, FactSet,
Container, ActionSet, Action.OpenUrl and Action.ToggleVisibility (1.2); `additionalProperties: false` so that a
typo'd property fails. The real renderer check (Microsoft's `adaptivecards` package in Chromium) is in
`render.py`.
"""

from __future__ import annotations

SPACING = {"enum": ["None", "Small", "Default", "Medium", "Large", "ExtraLarge", "Padding"]}
HTTPS_URL = {"type": "string", "pattern": r"^https://\S+$"}

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$defs": {
        "TextBlock": {
            "type": "object",
            "required": ["type", "text"],
            "additionalProperties": False,
            "properties": {
                "type": {"const": "TextBlock"},
                "text": {"type": "string", "minLength": 1},
                "wrap": {"type": "boolean"},
                "weight": {"enum": ["Default", "Lighter", "Bolder"]},
                "size": {"enum": ["Default", "Small", "Medium", "Large", "ExtraLarge"]},
                "color": {"enum": ["Default", "Dark", "Light", "Accent", "Good", "Warning", "Attention"]},
                "isSubtle": {"type": "boolean"},
                "spacing": SPACING,
                "separator": {"type": "boolean"},
                "fontType": {"enum": ["Default", "Monospace"]},
            },
        },
        "FactSet": {
            "type": "object",
            "required": ["type", "facts"],
            "additionalProperties": False,
            "properties": {
                "type": {"const": "FactSet"},
                "facts": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["title", "value"],
                        "additionalProperties": False,
                        "properties": {"title": {"type": "string"}, "value": {"type": "string"}},
                    },
                },
                "spacing": SPACING,
                "separator": {"type": "boolean"},
            },
        },
        "Action.OpenUrl": {
            "type": "object",
            "required": ["type", "url"],
            "additionalProperties": False,
            "properties": {
                "type": {"const": "Action.OpenUrl"},
                "url": HTTPS_URL,
                "title": {"type": "string", "minLength": 1},
            },
        },
        "Action.ToggleVisibility": {
            "type": "object",
            "required": ["type", "targetElements"],
            "additionalProperties": False,
            "properties": {
                "type": {"const": "Action.ToggleVisibility"},
                "title": {"type": "string", "minLength": 1},
                "targetElements": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            },
        },
        "Action": {"oneOf": [{"$ref": "#/$defs/Action.OpenUrl"}, {"$ref": "#/$defs/Action.ToggleVisibility"}]},
        "ActionSet": {
            "type": "object",
            "required": ["type", "actions"],
            "additionalProperties": False,
            "properties": {
                "type": {"const": "ActionSet"},
                "actions": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/Action"}},
                "spacing": SPACING,
            },
        },
        "Container": {
            "type": "object",
            "required": ["type", "items"],
            "additionalProperties": False,
            "properties": {
                "type": {"const": "Container"},
                "items": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/Element"}},
                "style": {"enum": ["default", "emphasis", "good", "attention", "warning", "accent"]},
                "bleed": {"type": "boolean"},
                "id": {"type": "string", "minLength": 1},
                "isVisible": {"type": "boolean"},
                "spacing": SPACING,
                "separator": {"type": "boolean"},
            },
        },
        "Column": {
            "type": "object",
            "required": ["type", "items"],
            "additionalProperties": False,
            "properties": {
                "type": {"const": "Column"},
                "items": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/Element"}},
                "width": {"anyOf": [{"enum": ["auto", "stretch"]}, {"type": "string", "pattern": r"^\d+px$"}]},
                "verticalContentAlignment": {"enum": ["Top", "Center", "Bottom"]},
            },
        },
        "ColumnSet": {
            "type": "object",
            "required": ["type", "columns"],
            "additionalProperties": False,
            "properties": {
                "type": {"const": "ColumnSet"},
                "columns": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/Column"}},
                "spacing": SPACING,
                "separator": {"type": "boolean"},
            },
        },
        "Element": {
            "oneOf": [
                {"$ref": "#/$defs/ColumnSet"},
                {"$ref": "#/$defs/TextBlock"},
                {"$ref": "#/$defs/FactSet"},
                {"$ref": "#/$defs/Container"},
                {"$ref": "#/$defs/ActionSet"},
            ]
        },
        "AdaptiveCard": {
            "type": "object",
            "required": ["type", "version", "body"],
            "additionalProperties": False,
            "properties": {
                "$schema": {"const": "http://adaptivecards.io/schemas/adaptive-card.json"},
                "type": {"const": "AdaptiveCard"},
                "version": {"type": "string", "pattern": r"^1\.([4-9]|[1-9]\d)$"},
                "body": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/Element"}},
                "actions": {"type": "array", "items": {"$ref": "#/$defs/Action.OpenUrl"}},
                "fallbackText": {"type": "string"},
                "speak": {"type": "string"},
                "msteams": {"type": "object", "properties": {"width": {"enum": ["Full"]}}},
            },
        },
    },
    # The Workflows webhook payload: a message whose attachments are Adaptive Cards.
    "type": "object",
    "required": ["type", "attachments"],
    "properties": {
        "type": {"const": "message"},
        "attachments": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["contentType", "content"],
                "additionalProperties": False,
                "properties": {
                    "contentType": {"const": "application/vnd.microsoft.card.adaptive"},
                    "contentUrl": {"type": "null"},
                    "content": {"$ref": "#/$defs/AdaptiveCard"},
                },
            },
        },
    },
}


def validate_payload(payload: dict) -> None:
    from jsonschema import Draft202012Validator

    Draft202012Validator(SCHEMA).validate(payload)


def elements(card: dict, kind: str) -> list[dict]:
    """Every element of `kind` anywhere in the card body (Containers and ActionSets searched)."""
    found: list[dict] = []

    def walk(items: list[dict]) -> None:
        for element in items:
            if element.get("type") == kind:
                found.append(element)
            walk(element.get("items", []))
            walk(element.get("columns", []))
            if element.get("type") == "ActionSet" and kind.startswith("Action."):
                found.extend(a for a in element["actions"] if a["type"] == kind)

    walk(card["body"])
    if kind.startswith("Action."):
        found.extend(a for a in card.get("actions", []) if a["type"] == kind)
    return found
