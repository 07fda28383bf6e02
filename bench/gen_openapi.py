"""Generate a large, deterministic OpenAPI 3.1 document shaped like the vendor's APIs.

    python bench/gen_openapi.py --operations 300 --schemas 1200 --out FILE   (default: stdout)
    python bench/gen_openapi.py --measure tests/data/vendor/*.json           (feature counts)

Why: start-up time and memory of the mock must be measured at the size of the
vendor's complete Configuration API (about 290 operations, 1,150 component
schemas), which we do not have. The Identity API (43 operations, 73 schemas) and
the Event API (27 operations, 407 schemas) are the models; `--measure` prints the
counts this generator was tuned against, for them and for its own output.

What the vendor documents do, and so what is generated:
- Paths `/v{version}/things`, `/v{version}/things/{resourceId}`, collection and item
  actions (`/things/search`, `/things/{resourceId}/archive`), sub-resources
  (`/things/{resourceId}/memberships/{membershipResourceId}`), a few under a
  namespace segment (`/ingest/meter-data`). operationId is the method plus the
  path in PascalCase (`getThingsByResourceIdMemberships`). No tags, no summaries.
- Parameters are inline: `version` (path, string, default "1"), `resourceId`
  (path, default ""), `X-API-KEY` (required header), `x-platform-id` (optional
  header), on lists `limit`/`page`/`order_by`/`order_direction` and a few filters,
  sometimes `expand[]` (array of strings). Security schemes `API-Key` and
  `JWT-Authentication` are declared but no operation names them.
- Responses: 200/201 with the resource, a `...ResponseWrapper` or
  `...PaginatedResponseWrapper` (`data` + `links` -> PaginationLinks + `limit`,
  `page`, `total_number_of_pages`), an inline array of a resource, or an empty
  object `Tag_operationId_Response_200`; 400/401/403/409/500 are the ApiError.
- Request bodies: `...CreateRequest` on POST, `...UpdateRequest` on PATCH, never
  marked required. A request schema repeats its resource's properties, pointing at
  the request variant of each child that has one.
- Schemas: every one has `title` equal to its name and a `type`; about a third are
  string enums, one per property and per variant (`UserStatus`,
  `UserCreateRequestStatus`, `UserUpdateRequestStatus`), sizes mostly 2-5, a few
  currency (176) and country (248) lists copied per use. Objects have 5 to 5.5
  properties on average (median 4, at most 66), half of them nullable type arrays
  (`["string", "null"]`); nullable references as `oneOf: [{$ref}, {type: null}]`,
  arrays of references, formats only `date-time` and `int64`. `required` is rare.
  Children are named after their parent (`MeterDataMeterProperty`); shared value
  objects (`Amount`, `Period`) are referenced from many places. The reference
  graph is a DAG up to 19 levels deep. Neither document has a `$ref` cycle,
  `allOf`, `anyOf`, a discriminator, `additionalProperties`, `const` or a
  `description` on a schema.
- Kept rare on purpose, because the mock must cope with them even though the two
  models lack them: three self-referencing tree nodes and one two-schema cycle,
  two `allOf`, two `anyOf` and one `oneOf` with a discriminator.

Determinism: one `random.Random(seed)`, no set or hash order anywhere, keys sorted
on output (indent 1, as the vendor's files), so a seed gives byte-identical output.
The counts are exact: the operation plan comes first, then the schemas it needs,
then the rare features, then generated children until the schema budget is spent
(a child costs one schema per variant of its parent, and a one-schema child always
fits, so the budget is met exactly).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence, TextIO

DEFAULT_SEED = 20240412
DEFAULT_OPERATIONS = 300
DEFAULT_SCHEMAS = 1200
OPERATIONS_PER_RESOURCE = 5
REF = "#/components/schemas/"
BASE, CREATE, UPDATE = "", "CreateRequest", "UpdateRequest"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# Rare features (absent from the vendor's documents), placed only if the budget allows.
SELF_CYCLES = 3
MUTUAL_CYCLES = 1
ALL_OFS = 2
ANY_OFS = 2
DISCRIMINATED_UNIONS = 1
# References added between existing schemas (shared value objects, resource to resource),
# per schema: the vendor's Event API has 1.5 references per schema, a tree alone gives ~1.2.
CROSS_REFERENCES_PER_SCHEMA = 0.2

# ------------------------------------------------------------------ vocabulary

RESOURCES = """
customer product product-item pricing-plan pricing-item pricing-item-config pricing-plan-subscription meter
meter-property feature entitlement coupon promotion-code discount credit-type credit-grant tax-rule tax-category
tax-code invoice-template invoice-setting billing-entity billing-period payment-gateway payment-method payment-term
dunning-policy notification-channel notification-template email-template custom-field custom-field-group webhook
integration data-export report-definition dashboard alert-rule exchange-rate currency-setting number-sequence
document-layout approval-flow quote-template contract-template commitment wallet price-book price-list bundle add-on
usage-limit rate-card tier-schedule revenue-rule accounting-mapping ledger-account cost-center sales-channel region
tenant-setting role-mapping audit-policy api-client sandbox import-job export-job calendar holiday-calendar
locale-setting branding-profile checkout-page portal-setting subscription-setting
""".split()
RESOURCE_QUALIFIERS = "partner regional legacy custom shared internal external global".split()
NAMESPACES = "billing catalog settings integrations ingest".split()
COLLECTION_ACTIONS = ("search bulk-create import export validate calculate bulk-delete ingest test-connection "
                      "simulate reorder delete bulk-update").split()
COLLECTION_VIEWS = "actions statistics defaults templates options lookup enabled".split()
ITEM_ACTIONS = ("activate deactivate archive unarchive publish duplicate cancel send-test recalculate approve "
                "reject restore lock unlock sync retry finalize delete roll-secret reset").split()
ITEM_VIEWS = "history preview usage event-trace summary audit-log download status decrypt dependencies".split()
SUB_RESOURCES = ("memberships lines rules versions notes attachments contacts tiers schedules overrides "
                 "assignments components mappings thresholds translations approvals comments recipients").split()

STRING_FIELDS = """
reference name description display_name email locale timezone url external_id code label quantity account_number
bic iban bank_code key value token username phone_number website city postal_code street state vat_number tax_id
invoice_number prefix suffix template note title summary color icon redirect_uri domain language checksum file_name
mime_type expression formula unit_label percentage rate number period_label signing_protocol api_header_field
secret_hint contact_name company_name legal_name registration_number message status_reason source_reference
target_reference object_id
""".split()
BOOLEAN_FIELDS = """
active deleted enabled is_default archived processing_only override visible locked mandatory taxable prorated
recurring test_mode verified auto_renew include_previous_data send_email invite_expired allow_overage hidden editable
billable inclusive compounding immediate
""".split()
INTEGER_FIELDS = """
display_order count limit priority version retries days precision scale interval_count grace_period_days max_attempts
position sequence_number total offset_days duration_days threshold_value minimum_quantity maximum_quantity free_units
trial_days level depth
""".split()
INT64_FIELDS = "size_bytes timestamp_ms sequence counter usage_units".split()
DATE_TIME_FIELDS = """
updated_at start_at end_at timestamp processed_at expires_at archived_at activated_at cancelled_at due_at issued_at
last_used_at published_at scheduled_at effective_at received_at valid_from valid_until
""".split()
STRING_ARRAY_FIELDS = """
tags ids allowed_domains included_actions excluded_actions labels aliases emails scopes keywords codes metadata_keys
locales child_ids
""".split()
# The share of each kind among the vendor's scalar properties (strings dominate).
SCALAR_KINDS = (("string", 78), ("date-time", 5), ("boolean", 6), ("integer", 5), ("int64", 1), ("string-array", 5))

OBJECT_WORDS = """
detail setting config period address schedule threshold condition selector mapping tier rule allowance credit
commitment notification preference trigger window breakdown summary line component attribute property option
fallback constraint metadata source destination credential certificate contact document attachment approval step
stage milestone calculation allocation adjustment charge fee rounding proration invoice payment refund balance
usage estimate forecast limit quota policy signature header filter sort range interval reminder escalation
template layout branding footer logo seller buyer organization individual representative bank account wallet
provider gateway integration connection mandate export destination_setting retry_policy delivery
""".split()
SHARED_OBJECTS = """
Amount Period Address Money DateRange Contact TaxRate Quantity Duration ExchangeRate Schedule RetryPolicy Threshold
BillingPeriod UsedExchangeRate CustomFieldValue LinkedIntegration Credits DiscountCondition PromotionCodeDetails
MeterConditions ResourceReference Percentage TimeWindow GeoLocation Recurrence AuditInfo Money Tax
""".split()
ENUM_WORDS = """
type status variant category mode source region environment frequency unit interval direction strategy operator
comparator visibility ownership processor channel format rounding level scope trigger_type role_type resource_field
collection_type calculation_type billing_type tax_behaviour fallback
""".split()
ENUM_WEIGHTS = {"type": 30, "status": 12, "variant": 5, "currency": 3, "country": 1}
ENUM_ARRAY_WORDS = "roles channels capabilities permissions weekdays events currencies countries".split()
ENUM_VALUES = """
ACTIVE INACTIVE DRAFT ARCHIVED DEPRECATED PENDING FAILED SUCCEEDED CANCELLED EXPIRED LIVE TEST PLATFORM SYSTEM
CUSTOMER PARTNER ADMIN USER DEFAULT CUSTOM FIXED PERCENTAGE FLAT TIERED VOLUME PACKAGE USAGE_BASED RECURRING
ONE_OFF DAY WEEK MONTH QUARTER YEAR HOUR MINUTE UP DOWN NEAREST NONE ALL ANY EQUALS NOT_EQUALS GREATER_THAN
LESS_THAN CONTAINS STARTS_WITH EMAIL WEBHOOK SMS SLACK STATIC DYNAMIC INCLUSIVE EXCLUSIVE INVOICE CREDIT_NOTE
ENTITLEMENT OVERDUE OPEN CLOSED FINAL PAID UNPAID PARTIAL SCHEDULED PROCESSING QUEUED RETRYING MANUAL AUTOMATIC
PASSWORD API_KEY OAUTH SAML STANDARD PREMIUM BASIC INTERNAL EXTERNAL PRIMARY SECONDARY ROUNDED TRUNCATED
""".split()
# Enum sizes as the vendor's (1..12 common; bigger ones are rare).
ENUM_SIZES = ((1, 4), (2, 36), (3, 16), (4, 14), (5, 9), (6, 4), (8, 4), (10, 3), (12, 4), (20, 3), (35, 3))
# Scalar properties per generated value object; a wide one now and then (the vendor's widest has 66).
VALUE_OBJECT_SCALARS = ((0, 4), (1, 40), (2, 27), (3, 12), (4, 7), (5, 4), (8, 3), (12, 1), (25, 1), (50, 1))
# How a reference is written, as counted over the vendor's properties.
REFERENCE_SHAPES = (("ref", 49), ("nullable", 25), ("nullable-array", 21), ("array", 5))
ENUM_SHAPES = (("ref", 50), ("nullable", 50))
QUALIFIERS = "default minimum maximum original converted primary secondary fallback parent target".split()
NAME_QUALIFIERS = "Primary Secondary Default Custom Extended Legacy Override Fallback".split()
UNION_VARIANTS = "Standard Custom External Legacy Manual Automatic Basic Advanced".split()

STATUS_TEXT = {"200": "OK", "201": "Created", "400": "Bad Request", "401": "Unauthorized", "403": "Forbidden",
               "404": "Not Found", "409": "Conflict", "500": "Internal Server Error"}
SECURITY_SCHEMES = {
    "API-Key": {"in": "header", "name": "X-API-KEY", "type": "apiKey"},
    "JWT-Authentication": {"scheme": "bearer", "type": "http"},
}


def pascal(words: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_ ]", words) if part)


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def camel(words: str) -> str:
    text = pascal(words)
    return text[:1].lower() + text[1:]


def plural(words: str) -> str:
    head, sep, word = words.rpartition("-") if "-" in words else ("", "", words)
    if "_" in word:
        head2, _, word = word.rpartition("_")
        head, sep = (head + sep + head2, "_") if head else (head2, "_")
    if re.search(r"[^aeiou]y$", word):
        word = word[:-1] + "ies"
    elif re.search(r"(s|x|ch|sh)$", word):
        word += "es"
    else:
        word += "s"
    return head + sep + word


def singular(words: str) -> str:
    if words.endswith("ies"):
        return words[:-3] + "y"
    if re.search(r"(ss|x|ch|sh)es$", words):
        return words[:-2]
    return words[:-1] if words.endswith("s") else words


# ------------------------------------------------------------------ model


@dataclass(eq=False)
class Prop:
    """A property of an object family; a reference is resolved per variant when rendered."""

    name: str
    schema: dict[str, Any] | None = None
    targets: tuple[Family, ...] = ()
    shape: str = "ref"  # ref | nullable | array | nullable-array | any-of


@dataclass(eq=False)
class Family:
    """Schemas that share one shape: a resource and its CreateRequest/UpdateRequest, or one schema.

    Mutable while the document is built: children are attached after the parent exists.
    """

    kind: str  # object | enum | union | all-of
    names: dict[str, str]  # variant ("" | "CreateRequest" | "UpdateRequest") -> schema name
    index: int
    stem: tuple[str, ...] = ()
    open: bool = False  # generated children and cross references may be attached
    shared: bool = False  # a stand-alone value object other schemas refer to
    props: list[Prop] = field(default_factory=list)
    values: list[str] = field(default_factory=list)
    required: dict[str, list[str]] = field(default_factory=dict)
    members: list[Family] = field(default_factory=list)
    discriminator: str = ""

    def name_for(self, variant: str) -> str:
        return self.names.get(variant, self.names[BASE])

    def has(self, prop: str) -> bool:
        return any(p.name == prop for p in self.props)


@dataclass
class Resource:
    singular: str
    namespace: str
    ops: list[tuple[str, str]]  # (kind, word)
    family: Family | None = None
    wrapper: Family | None = None

    @property
    def plural(self) -> str:
        return plural(self.singular)

    @property
    def schema(self) -> str:
        return pascal(self.singular)

    @property
    def collection(self) -> str:
        return "/v{version}/" + (self.namespace + "/" if self.namespace else "") + self.plural

    @property
    def item(self) -> str:
        return self.collection + "/{resourceId}"


def _weighted(rng: random.Random, table: Sequence[tuple[Any, int]]) -> Any:
    return rng.choices([value for value, _ in table], [weight for _, weight in table])[0]


# ------------------------------------------------------------------ builder


class _Builder:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.families: list[Family] = []
        self.taken: set[str] = set()  # membership tests only; never iterated
        self.paths: dict[str, dict[str, Any]] = {}
        self.resources: list[Resource] = []
        letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        self.currencies = sorted(rng.sample([a + b + c for a in letters for b in letters for c in letters], 176))
        self.countries = sorted(rng.sample([a + b for a in letters for b in letters], 248))

    # -------------------------------------------------------------- families

    def count(self) -> int:
        return sum(len(f.names) for f in self.families)

    def fits(self, names: Iterable[str]) -> bool:
        names = list(names)
        return len(set(names)) == len(names) and not any(n in self.taken for n in names)

    def add(self, kind: str, names: dict[str, str], **kw: Any) -> Family:
        assert self.fits(names.values()), names
        self.taken.update(names.values())
        family = Family(kind=kind, names=names, index=len(self.families), **kw)
        self.families.append(family)
        return family

    def scalar(self, name: str, kind: str) -> dict[str, Any]:
        rng = self.rng
        if kind == "date-time":
            return {"format": "date-time", "type": ["string", "null"] if rng.random() < 0.87 else "string"}
        if kind == "boolean":
            return {"type": ["boolean", "null"] if rng.random() < 0.85 else "boolean"}
        if kind == "integer":
            return {"type": ["integer", "null"] if rng.random() < 0.8 else "integer"}
        if kind == "int64":
            return {"format": "int64", "type": "integer"}
        if kind == "string-array":
            return {"items": {"type": "string"}, "type": ["array", "null"] if rng.random() < 0.6 else "array"}
        return {"type": ["string", "null"] if rng.random() < 0.7 else "string"}

    def add_scalars(self, family: Family, count: int, id_pool: Sequence[str] = ()) -> None:
        pools = {"string": STRING_FIELDS, "date-time": DATE_TIME_FIELDS, "boolean": BOOLEAN_FIELDS,
                 "integer": INTEGER_FIELDS, "int64": INT64_FIELDS, "string-array": STRING_ARRAY_FIELDS}
        for _ in range(count):
            if id_pool and self.rng.random() < 0.15:
                kind, name = "string", self.rng.choice(id_pool) + "_id"
            else:
                kind = _weighted(self.rng, SCALAR_KINDS)
                name = self.rng.choice(pools[kind])
            if not family.has(name):
                family.props.append(Prop(name, self.scalar(name, kind)))

    def resource_ids(self) -> list[str]:
        return [r.singular.replace("-", "_") for r in self.resources]

    def object_family(self, names: dict[str, str], stem: tuple[str, ...], scalars: int, *,
                      fixed: Sequence[tuple[str, dict[str, Any]]] = (), open_: bool = True,
                      shared: bool = False) -> Family:
        family = self.add("object", names, stem=stem, open=open_, shared=shared)
        family.props.extend(Prop(name, dict(schema)) for name, schema in fixed)
        self.add_scalars(family, scalars, self.resource_ids())
        return family

    def enum_values(self, word: str) -> list[str]:
        if word in ("currency", "currencies"):
            return list(self.currencies)
        if word in ("country", "countries"):
            return list(self.countries)
        size = _weighted(self.rng, ENUM_SIZES)
        if size > len(ENUM_VALUES):
            size = len(ENUM_VALUES)
        return self.rng.sample(ENUM_VALUES, size)

    def attach(self, parent: Family, child: Family, prop: str, shape: str) -> None:
        assert not parent.has(prop), (parent.names, prop)
        parent.props.append(Prop(prop, targets=(child,), shape=shape))

    def child_object(self, parent: Family, owned: bool, scalars: int) -> Family | None:
        """A value object under `parent`, named after it; `owned` gives it the parent's variants."""
        shape = _weighted(self.rng, REFERENCE_SHAPES)
        for word in self.rng.sample(OBJECT_WORDS, 8):
            prop = plural(word) if shape.endswith("array") else word
            part = pascal(word)
            if parent.stem and parent.stem[-1].endswith(part):
                continue
            for qualifier in ("", *NAME_QUALIFIERS):
                if parent.has(qualifier.lower() + "_" + prop if qualifier else prop):
                    continue
                stem = parent.stem[-2:] + (qualifier + part,)
                base = "".join(stem)
                variants = list(parent.names) if owned else [BASE]
                names = {v: base + v for v in variants}
                if self.fits(names.values()):
                    child = self.object_family(names, stem, scalars)
                    self.attach(parent, child, (qualifier.lower() + "_" + prop) if qualifier else prop, shape)
                    return child
        return None

    def shared_object(self, parent: Family, scalars: int) -> Family | None:
        for name in self.rng.sample(SHARED_OBJECTS, 6):
            for qualifier in ("", *NAME_QUALIFIERS):
                full = qualifier + name
                prop = snake(full)
                if self.fits([full]) and not parent.has(prop):
                    child = self.object_family({BASE: full}, (full,), scalars, shared=True)
                    self.attach(parent, child, prop, _weighted(self.rng, REFERENCE_SHAPES))
                    return child
        return None

    def child_enum(self, parent: Family) -> Family | None:
        """A string enum per variant of `parent`, as the vendor writes them (UserCreateRequestStatus)."""
        as_array = self.rng.random() < 0.08
        for _ in range(6):
            if as_array:
                word = self.rng.choice(ENUM_ARRAY_WORDS)
            elif self.rng.random() < 0.6:
                word = _weighted(self.rng, tuple(ENUM_WEIGHTS.items()))
            else:
                word = self.rng.choice(ENUM_WORDS)
            suffix = pascal(word) + ("Items" if as_array else "")
            names = {v: name + suffix for v, name in parent.names.items()}
            if parent.has(word) or not self.fits(names.values()):
                continue
            child = self.add("enum", names, values=self.enum_values(word))
            shape = _weighted(self.rng, (("nullable-array", 60), ("array", 40))) if as_array \
                else _weighted(self.rng, ENUM_SHAPES)
            self.attach(parent, child, word, shape)
            return child
        return None

    # -------------------------------------------------------------- plan

    def plan(self, operations: int) -> None:
        rng = self.rng
        count = max(1, round(operations / OPERATIONS_PER_RESOURCE))
        nouns = list(RESOURCES)
        if count > len(nouns):
            nouns += [f"{q}-{n}" for q in RESOURCE_QUALIFIERS for n in RESOURCES]
        if count > len(nouns):
            raise ValueError(f"at most {len(nouns) * OPERATIONS_PER_RESOURCE} operations are supported")
        candidates: list[list[tuple[str, str]]] = []
        for noun in rng.sample(nouns, count):
            namespace = rng.choice(NAMESPACES) if rng.random() < 0.1 else ""
            groups: list[list[tuple[str, str]]] = [[("delete", "")]]
            groups += [[("collection-action", w)] for w in rng.sample(COLLECTION_ACTIONS, 3)]
            groups += [[("item-action", w)] for w in rng.sample(ITEM_ACTIONS, 2)]
            groups += [[("item-view", rng.choice(ITEM_VIEWS))], [("collection-view", rng.choice(COLLECTION_VIEWS))]]
            for sub in rng.sample(SUB_RESOURCES, 2):
                groups.append([(kind, sub) for kind in ("sub-list", "sub-create", "sub-get", "sub-update",
                                                         "sub-delete")])
            rng.shuffle(groups)
            if rng.random() < 0.5:  # collection actions are the vendor's commonest extra (30 % of paths)
                groups.insert(0, groups.pop(next(i for i, g in enumerate(groups) if g[0][0] == "collection-action")))
            # Updates are rarer than creates in the vendor's documents (10 % of operations against 17 %),
            # actions commoner (45 %).
            groups.insert(0 if rng.random() < 0.6 else rng.randrange(len(groups)), [("update", "")])
            core = [("list", ""), ("get", ""), ("create", "")]
            candidates.append(core + [op for group in groups for op in group])
            self.resources.append(Resource(noun, namespace, []))
        # Every resource gets its list; the rest is spread at random, so some resources are
        # read-only and some have many actions, as in the vendor's documents.
        quotas = [1] * count
        for _ in range(operations - count):
            i = rng.choice([i for i in range(count) if quotas[i] < len(candidates[i])])
            quotas[i] += 1
        for resource, cands, quota in zip(self.resources, candidates, quotas):
            resource.ops = cands[:quota]

    # -------------------------------------------------------------- mandatory schemas

    def shared_schemas(self) -> None:
        self.api_error = self.object_family({BASE: "ApiError"}, ("ApiError",), 0, open_=False, fixed=(
            ("field", {"type": ["string", "null"]}), ("message", {"type": "string"}),
            ("resource_id", {"type": ["string", "null"]})))
        # The codes every Solvimon API document lists (as the vendor's webhooks document does).
        codes = ["RESOURCE_NOT_FOUND", "RESOURCES_NOT_FOUND", "UNABLE_TO_PROCESS_INSTRUCTIONS", "BAD_REQUEST",
                 "UNSUPPORTED_MEDIA_TYPE", "UNSUPPORTED_VERSION", "UNAUTHORISED", "MISSING_FIELD", "INVALID_FIELD",
                 "INVALID_OPERATION", "INTERNAL_ERROR", "USER_NOT_ALLOWED", "INVALID_REQUEST"]
        for problem in ("NOT_FOUND", "ALREADY_EXISTS", "INVALID_STATE", "LOCKED"):
            codes += [r.singular.replace("-", "_").upper() + "_" + problem for r in self.resources]
        for word, values, shape in (("code", codes[:85], "ref"), ("type", ["API_ERROR", "INVALID_REQUEST"], "ref"),
                                    ("resource_type", [r.singular.replace("-", "_").upper()
                                                       for r in self.resources], "nullable")):
            enum = self.add("enum", {BASE: "ApiError" + pascal(word)}, values=values)
            self.attach(self.api_error, enum, word, shape)
        self.api_error.required[BASE] = ["type", "code", "message"]
        self.links = self.object_family({BASE: "PaginationLinks"}, ("PaginationLinks",), 0, open_=False, fixed=[
            (name, {"type": ["string", "null"]}) for name in ("current", "first", "next", "previous")])

    def wrapper(self, of: Family, name: str, required: list[str]) -> Family:
        wrapper = self.object_family({BASE: name}, (name,), 0, open_=False, fixed=[
            (n, {"type": ["integer", "null"]}) for n in ("limit", "page", "total_number_of_pages")])
        self.attach(wrapper, of, "data", "array")
        self.attach(wrapper, self.links, "links", "ref")
        wrapper.required[BASE] = required
        return wrapper

    def request_required(self, family: Family) -> None:
        if CREATE in family.names and self.rng.random() < 0.4:
            fixed = [p.name for p in family.props if p.schema and p.schema.get("type") == "string"]
            if fixed:
                family.required[CREATE] = self.rng.sample(fixed, min(len(fixed), self.rng.randint(1, 4)))

    def resource_schemas(self, resource: Resource) -> None:
        kinds = [kind for kind, _ in resource.ops]
        variants = [BASE] + [CREATE] * ("create" in kinds) + [UPDATE] * ("update" in kinds)
        name = resource.schema
        family = self.object_family({v: name + v for v in variants}, (name,), self.rng.randint(2, 8), fixed=(
            ("id", {"type": ["string", "null"]}), ("object_type", {"type": ["string", "null"]}),
            ("created_at", {"type": ["string", "null"]}), ("reference", {"type": "string"})))
        self.request_required(family)
        resource.family = family
        if "list" in kinds and self.rng.random() < 0.85:
            paginated = self.rng.random() < 0.5
            resource.wrapper = self.wrapper(family, name + ("PaginatedResponseWrapper" if paginated
                                                            else "ResponseWrapper"),
                                            ["data", "links"] if self.rng.random() < 0.6 else ["data"])
        subs: dict[str, Family] = {}
        for kind, word in resource.ops:
            if kind.startswith("sub-") and word not in subs:
                sub_kinds = [k for k, w in resource.ops if w == word]
                sub_variants = [BASE] + [CREATE] * ("sub-create" in sub_kinds) + [UPDATE] * ("sub-update" in sub_kinds)
                sub_name = name + pascal(singular(word))
                sub = self.object_family({v: sub_name + v for v in sub_variants}, (name, pascal(singular(word))),
                                         self.rng.randint(2, 8), fixed=(("id", {"type": ["string", "null"]}),
                                                                        ("object_type", {"type": ["string", "null"]})))
                self.request_required(sub)
                self.attach(family, sub, word.replace("-", "_"), "nullable-array")
                subs[word] = sub
        for kind, word in resource.ops:
            self.operation(resource, kind, word, subs.get(word))

    # -------------------------------------------------------------- operations

    def parameters(self, path: str, query: Sequence[dict[str, Any]] = ()) -> list[dict[str, Any]]:
        params = [{"in": "path", "name": "version", "required": True, "schema": {"default": "1", "type": "string"}}]
        for name in re.findall(r"\{(\w+)\}", path):
            if name != "version":
                params.append({"in": "path", "name": name, "required": True,
                               "schema": {"default": "", "type": "string"}})
        params += list(query)
        params.append({"in": "header", "name": "X-API-KEY", "required": True, "schema": {"type": "string"}})
        params.append({"in": "header", "name": "x-platform-id", "required": False, "schema": {"type": "string"}})
        return params

    def query(self, family: Family | None, *, paginated: bool, filters: int) -> list[dict[str, Any]]:
        params = []
        if family is not None and filters:
            usable = [p for p in family.props if p.schema and p.schema.get("type") in
                      ("string", "boolean", ["string", "null"], ["boolean", "null"]) and "format" not in p.schema
                      and p.name not in ("limit", "page", "order_by", "order_direction")]
            for prop in self.rng.sample(usable, min(filters, len(usable))):
                kind = "boolean" if "boolean" in prop.schema["type"] else "string"
                params.append({"in": "query", "name": prop.name, "required": False, "schema": {"type": kind}})
        if self.rng.random() < 0.3:
            params.append({"in": "query", "name": "expand[]", "required": False,
                           "schema": {"items": {"type": "string"}, "type": "array"}})
        if paginated:
            params += [{"in": "query", "name": n, "required": False, "schema": {"type": "integer"}}
                       for n in ("limit", "page")]
            if self.rng.random() < 0.7:
                params += [{"in": "query", "name": n, "required": False, "schema": {"type": "string"}}
                           for n in ("order_by", "order_direction")]
        return params

    def responses(self, code: str, schema: dict[str, Any], *, bad_request: bool,
                  conflict: bool = False) -> dict[str, Any]:
        codes = [code] + ["400"] * bad_request + ["401", "403"] + ["404"] * (self.rng.random() < 0.03)
        codes += ["409"] * conflict + ["500"] * (self.rng.random() < 0.9)
        out = {code: {"content": {"application/json": {"schema": schema}}, "description": STATUS_TEXT[code]}}
        for error in codes[1:]:
            out[error] = {"content": {"application/json": {"schema": {"$ref": REF + "ApiError"}}},
                          "description": STATUS_TEXT[error]}
        return out

    def add_operation(self, method: str, path: str, body: str | None, responses: dict[str, Any],
                      query: Sequence[dict[str, Any]] = ()) -> str:
        words = []
        for segment in path.split("/")[2:]:
            words.append("By" + pascal(segment[1:-1]) if segment.startswith("{") else pascal(segment))
        op_id = method + "".join(words)
        op: dict[str, Any] = {"operationId": op_id, "parameters": self.parameters(path, query),
                              "responses": responses}
        if body is not None:
            op["requestBody"] = {"content": {"application/json": {"schema": {"$ref": REF + body}}}}
        assert method not in self.paths.get(path, {}), (method, path)
        self.paths.setdefault(path, {})[method] = op
        return op_id

    def empty_response(self, resource: Resource, method: str, path: str) -> dict[str, Any]:
        # The vendor names these after the tag and the operationId, which is known only once built.
        words = "".join("By" + pascal(s[1:-1]) if s.startswith("{") else pascal(s) for s in path.split("/")[2:])
        name = f"{pascal(resource.plural)}_{method}{words}_Response_200"
        self.add("object", {BASE: name}, stem=(name,))
        return {"$ref": REF + name}

    def operation(self, resource: Resource, kind: str, word: str, sub: Family | None) -> None:
        rng = self.rng
        family = resource.family
        assert family is not None
        name = family.names
        ref = {"$ref": REF + name[BASE]}
        array = {"items": dict(ref), "type": "array"}
        if kind == "list":
            schema = {"$ref": REF + resource.wrapper.names[BASE]} if resource.wrapper else array
            responses = self.responses("200", schema, bad_request=rng.random() < 0.4)
            filters = _weighted(rng, ((0, 5), (1, 2), (2, 2), (4, 1)))
            self.add_operation("get", resource.collection, None, responses,
                               self.query(family, paginated=True, filters=filters))
        elif kind == "get":
            responses = self.responses("200", ref, bad_request=rng.random() < 0.4)
            self.add_operation("get", resource.item, None, responses, self.query(None, paginated=False, filters=0))
        elif kind == "create":
            code = "201" if rng.random() < 0.85 else "200"
            self.add_operation("post", resource.collection, name[CREATE],
                               self.responses(code, ref, bad_request=rng.random() < 0.9, conflict=rng.random() < 0.25))
        elif kind == "update":
            self.add_operation("patch", resource.item, name[UPDATE], self.responses("200", ref, bad_request=True))
        elif kind == "delete":
            self.add_operation("delete", resource.item, None, self.responses("200", ref, bad_request=True))
        elif kind == "collection-action":
            path = f"{resource.collection}/{word}"
            body = self.action_body(resource, word, use=CREATE, none=0.25)
            code = "200" if rng.random() < 0.6 else "201"
            pick = rng.random()
            if pick < 0.2 and resource.wrapper:
                schema = {"$ref": REF + resource.wrapper.names[BASE]}
            elif pick < 0.35:
                schema = self.empty_response(resource, "post", path)
            elif pick < 0.5:
                schema = array
            else:
                schema = ref
            self.add_operation("post", path, body, self.responses(code, schema, bad_request=True,
                                                                  conflict=code == "201" and rng.random() < 0.5),
                               self.query(family, paginated=False, filters=rng.choice((0, 0, 1, 2))))
        elif kind == "collection-view":
            schema = {"$ref": REF + resource.wrapper.names[BASE]} if resource.wrapper and rng.random() < 0.6 else array
            self.add_operation("get", f"{resource.collection}/{word}", None,
                               self.responses("200", schema, bad_request=rng.random() < 0.4),
                               self.query(family, paginated=True, filters=rng.choice((0, 1, 2))))
        elif kind == "item-action":
            path = f"{resource.item}/{word}"
            body = self.action_body(resource, word, use=UPDATE, none=0.6)
            pick = rng.random()
            schema = self.empty_response(resource, "post", path) if pick < 0.15 else \
                {"type": "string"} if pick < 0.22 else ref
            self.add_operation("post", path, body, self.responses("200", schema, bad_request=True))
        elif kind == "item-view":
            schema = ref
            if rng.random() < 0.6:
                view = pascal(word)
                names = {BASE: name[BASE] + view}
                if self.fits(names.values()):
                    self.object_family(names, (name[BASE], view), rng.randint(3, 10))
                    schema = {"$ref": REF + names[BASE]}
            self.add_operation("get", f"{resource.item}/{word}", None,
                               self.responses("200", schema, bad_request=rng.random() < 0.4),
                               self.query(None, paginated=False, filters=0))
        else:
            self.sub_operation(resource, kind, word, sub)

    def action_body(self, resource: Resource, word: str, *, use: str, none: float) -> str | None:
        family = resource.family
        assert family is not None
        pick = self.rng.random()
        if pick < none:
            return None
        if pick < none + (1 - none) / 2 and use in family.names:
            return family.names[use]
        names = {BASE: family.names[BASE] + pascal(word) + "CreateRequest"}
        if not self.fits(names.values()):
            return family.names.get(use)
        body = self.object_family(names, (family.names[BASE], pascal(word)), self.rng.randint(1, 6))
        fixed = [p.name for p in body.props if p.schema and p.schema.get("type") == "string"]
        if fixed and self.rng.random() < 0.5:
            body.required[BASE] = fixed[:2]
        return names[BASE]

    def sub_operation(self, resource: Resource, kind: str, word: str, sub: Family | None) -> None:
        assert sub is not None
        rng = self.rng
        collection = f"{resource.item}/{word}"
        item = collection + "/{" + camel(singular(word)) + "ResourceId}"
        ref = {"$ref": REF + sub.names[BASE]}
        array = {"items": dict(ref), "type": "array"}
        if kind == "sub-list":
            schema = array
            if rng.random() < 0.5:
                wrapper = self.wrapper(sub, sub.names[BASE] + "PaginatedResponseWrapper", ["data"])
                schema = {"$ref": REF + wrapper.names[BASE]}
            self.add_operation("get", collection, None, self.responses("200", schema, bad_request=rng.random() < 0.4),
                               self.query(sub, paginated=rng.random() < 0.5, filters=rng.choice((0, 0, 1))))
        elif kind == "sub-create":
            self.add_operation("post", collection, sub.names[CREATE],
                               self.responses("201", array if rng.random() < 0.5 else ref, bad_request=True))
        elif kind == "sub-get":
            self.add_operation("get", item, None, self.responses("200", ref, bad_request=rng.random() < 0.4))
        elif kind == "sub-update":
            self.add_operation("patch", item, sub.names[UPDATE],
                               self.responses("200", array if rng.random() < 0.5 else ref, bad_request=True))
        elif kind == "sub-delete":
            self.add_operation("delete", item, None, self.responses("200", ref, bad_request=True))
        else:
            raise AssertionError(kind)

    # -------------------------------------------------------------- rare features

    def rare_features(self, budget: int) -> None:
        rng = self.rng
        owners = [r.family for r in self.resources if r.family is not None]

        def room(cost: int) -> bool:
            return self.count() + cost <= budget

        for _ in range(SELF_CYCLES):
            if not room(1):
                return
            owner = rng.choice(owners)
            word = rng.choice(("Hierarchy", "Tree", "Category", "Group", "Folder"))
            names = {BASE: owner.names[BASE] + word + "Node"}
            if not self.fits(names.values()):
                continue
            node = self.object_family(names, (names[BASE],), 2, open_=False, fixed=(
                ("id", {"type": ["string", "null"]}), ("name", {"type": ["string", "null"]}),
                ("depth", {"type": ["integer", "null"]})))
            self.attach(node, node, "children", "nullable-array")
            self.attach(owner, node, snake(word) + "_node", "nullable")
        for _ in range(MUTUAL_CYCLES):
            if not room(2):
                return
            owner = rng.choice(owners)
            names = {BASE: owner.names[BASE] + "ConditionGroup"}, {BASE: owner.names[BASE] + "GroupCondition"}
            if not self.fits([names[0][BASE], names[1][BASE]]):
                continue
            group = self.object_family(names[0], (names[0][BASE],), 2, open_=False,
                                       fixed=(("operator", {"type": ["string", "null"]}),))
            condition = self.object_family(names[1], (names[1][BASE],), 3, open_=False)
            self.attach(group, condition, "conditions", "array")
            self.attach(condition, group, "group", "nullable")
            self.attach(owner, group, "condition_group", "nullable")
        for _ in range(ALL_OFS):
            if not room(2):
                return
            owner = rng.choice(owners)
            names = {BASE: owner.names[BASE] + "ExtendedSettings"}, {BASE: owner.names[BASE] + "SettingsBase"}
            if not self.fits([names[0][BASE], names[1][BASE]]):
                continue
            extended = self.add("all-of", names[0], stem=(names[0][BASE],))
            self.add_scalars(extended, rng.randint(2, 5))
            base = self.object_family(names[1], (names[1][BASE],), rng.randint(2, 6))
            extended.members.append(base)
            self.attach(owner, extended, "extended_settings", "nullable")
        for _ in range(DISCRIMINATED_UNIONS):
            if not room(7):
                return
            owner = rng.choice(owners)
            union_name = owner.names[BASE] + "Provider"
            members = rng.sample(UNION_VARIANTS, 3)
            names = [union_name] + [union_name + m for m in members] + [union_name + m + "Variant" for m in members]
            if not self.fits(names):
                continue
            union = self.add("union", {BASE: union_name}, stem=(union_name,), discriminator="variant")
            for member in members:
                variant = member.upper()
                obj = self.object_family({BASE: union_name + member}, (union_name + member,), rng.randint(2, 5),
                                         open_=False)
                tag = self.add("enum", {BASE: union_name + member + "Variant"}, values=[variant])
                self.attach(obj, tag, "variant", "ref")
                obj.required[BASE] = ["variant"]
                union.members.append(obj)
                union.values.append(variant)
            self.attach(owner, union, "provider", "nullable")

    # -------------------------------------------------------------- filling the budget

    def fill(self, budget: int) -> None:
        rng = self.rng
        while (left := budget - self.count()) > 0:
            parents = [f for f in self.families if f.open and f.kind == "object"]
            parent = rng.choice(parents)
            cost = len(parent.names)
            pick = rng.random()
            child: Family | None = None
            if cost <= left and pick < 0.38:
                child = self.child_enum(parent)
            elif cost <= left and pick < 0.55:
                child = self.child_object(parent, owned=True, scalars=_weighted(rng, VALUE_OBJECT_SCALARS))
            elif pick < 0.65:
                child = self.shared_object(parent, scalars=_weighted(rng, VALUE_OBJECT_SCALARS))
            elif pick < 0.66:
                # The vendor's `...Items`: an array of objects with no properties at all.
                names = {BASE: "".join(parent.stem[-2:]) + "EntriesItems"}
                if not parent.has("entries") and self.fits(names.values()):
                    child = self.add("object", names, stem=(names[BASE],))
                    self.attach(parent, child, "entries", "nullable-array")
            if child is None and budget - self.count() > 0:
                self.child_object(parent, owned=False, scalars=_weighted(rng, VALUE_OBJECT_SCALARS))

    def cross_references(self, schemas: int) -> None:
        """References between existing schemas, always to a later one so the graph stays acyclic."""
        rng = self.rng
        targets = [f for f in self.families if f.kind == "object" and (f.shared or any(
            r.family is f for r in self.resources))]
        sources = [f for f in self.families if f.kind == "object" and f.open]
        weights = {id(t): 1 for t in targets}
        wanted = round(CROSS_REFERENCES_PER_SCHEMA * schemas)
        for _ in range(wanted * 5):
            if wanted == 0 or not targets:
                break
            target = rng.choices(targets, [weights[id(t)] for t in targets])[0]
            earlier = [s for s in sources if s.index < target.index]
            if not earlier:
                continue
            source = rng.choice(earlier)
            shape = _weighted(rng, REFERENCE_SHAPES)
            word = snake(target.names[BASE])
            prop = plural(word) if shape.endswith("array") else word
            if source.has(prop):
                prop = rng.choice(QUALIFIERS) + "_" + prop
                if source.has(prop):
                    continue
            self.attach(source, target, prop, shape)
            if not target.shared and not source.has(word + "_id"):
                source.props.append(Prop(word + "_id", {"type": ["string", "null"]}))
            weights[id(target)] += 2  # preferential: the vendor's Amount is referenced 42 times
            wanted -= 1
        for _ in range(ANY_OFS):
            for _ in range(20):
                source = rng.choice(sources)
                later = [f for f in self.families if f.kind == "object" and f.open and f.index > source.index]
                if len(later) >= 2 and not source.has("payload"):
                    source.props.append(Prop("payload", targets=tuple(rng.sample(later, 2)), shape="any-of"))
                    break

    # -------------------------------------------------------------- rendering

    def render_prop(self, prop: Prop, variant: str) -> dict[str, Any]:
        if prop.schema is not None:
            return json.loads(json.dumps(prop.schema))
        refs = [{"$ref": REF + t.name_for(variant)} for t in prop.targets]
        if prop.shape == "ref":
            return refs[0]
        if prop.shape == "nullable":
            return {"oneOf": [refs[0], {"type": "null"}]}
        if prop.shape == "array":
            return {"items": refs[0], "type": "array"}
        if prop.shape == "nullable-array":
            return {"items": refs[0], "type": ["array", "null"]}
        if prop.shape == "any-of":
            return {"anyOf": [*refs, {"type": "null"}]}
        raise AssertionError(prop.shape)

    def render(self, family: Family) -> dict[str, dict[str, Any]]:
        out = {}
        for variant, name in family.names.items():
            if family.kind == "enum":
                schema: dict[str, Any] = {"enum": list(family.values), "title": name, "type": "string"}
            elif family.kind == "union":
                refs = [REF + m.names[BASE] for m in family.members]
                schema = {"discriminator": {"mapping": dict(zip(family.values, refs)),
                                            "propertyName": family.discriminator},
                          "oneOf": [{"$ref": ref} for ref in refs], "title": name, "type": "object"}
            else:
                properties = {p.name: self.render_prop(p, variant) for p in family.props}
                if family.kind == "all-of":
                    schema = {"allOf": [{"$ref": REF + family.members[0].names[BASE]},
                                        {"properties": properties, "type": "object"}],
                              "title": name, "type": "object"}
                else:
                    schema = {"properties": properties, "title": name, "type": "object"}
                if family.required.get(variant):
                    schema["required"] = list(family.required[variant])
            out[name] = schema
        return out


# ------------------------------------------------------------------ public API


def generate(operations: int = DEFAULT_OPERATIONS, schemas: int = DEFAULT_SCHEMAS,
             seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """The document as a dict; exactly `operations` operations and `schemas` component schemas."""
    if operations < 1:
        raise ValueError("--operations must be at least 1")
    builder = _Builder(random.Random(seed))
    builder.plan(operations)
    builder.shared_schemas()
    for resource in builder.resources:
        builder.resource_schemas(resource)
    needed = builder.count()
    if schemas < needed:
        raise ValueError(f"{operations} operations need at least {needed} component schemas with seed {seed} "
                         f"(asked for {schemas})")
    builder.rare_features(schemas)
    builder.fill(schemas)
    builder.cross_references(schemas)
    components: dict[str, Any] = {}
    for family in builder.families:
        components.update(builder.render(family))
    assert len(components) == schemas == builder.count(), (len(components), schemas)
    count = sum(1 for item in builder.paths.values() for m in item if m in METHODS)
    assert count == operations, (count, operations)
    return {
        "components": {"schemas": components, "securitySchemes": json.loads(json.dumps(SECURITY_SCHEMES))},
        "info": {"title": "Configuration API (synthetic)", "version": "1.0.0",
                 "description": f"Generated by bench/gen_openapi.py --operations {operations} "
                                f"--schemas {schemas} --seed {seed}, in the shape of the vendor's "
                                "Identity and Event APIs, to measure the mock at full size."},
        "openapi": "3.1.0",
        "paths": builder.paths,
    }


def dumps(document: dict[str, Any]) -> str:
    """As the vendor writes its documents: sorted keys, indent 1."""
    return json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def measure(document: dict[str, Any]) -> dict[str, Any]:
    """Counts of the features this generator imitates, for any OpenAPI 3.x document."""
    ops = [(path, method, op) for path, item in document.get("paths", {}).items()
           for method, op in item.items() if method in METHODS]
    schemas = document.get("components", {}).get("schemas", {})
    stats: Counter[str] = Counter()
    stats["paths"] = len(document.get("paths", {}))
    stats["operations"] = len(ops)
    for path, method, op in ops:
        stats["method " + method] += 1
        shape = "/".join("{id}" if s.startswith("{") else "x" for s in path.split("/")[2:])
        stats["path shape " + shape] += 1
        stats["parameters"] += len(op.get("parameters", []))
        for param in op.get("parameters", []):
            if param["name"] in ("version", "resourceId", "X-API-KEY", "x-platform-id", "limit", "page",
                                 "order_by", "order_direction", "expand[]"):
                stats["parameter " + param["name"]] += 1
            else:
                stats["parameter (other, " + param["in"] + ")"] += 1
        stats["request bodies"] += "requestBody" in op
        for code, response in op.get("responses", {}).items():
            stats["response " + code] += 1
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            target = schema.get("$ref", "").rsplit("/", 1)[-1]
            if code.startswith("2"):
                kind = ("PaginatedResponseWrapper" if target.endswith("PaginatedResponseWrapper") else
                        "ResponseWrapper" if target.endswith("ResponseWrapper") else
                        "_Response_ object" if "_Response_" in target else
                        "resource" if target else "inline " + str(schema.get("type")))
                stats["success body: " + kind] += 1
    stats["schemas"] = len(schemas)
    graph: dict[str, list[str]] = {}
    property_counts = []
    for name, schema in schemas.items():
        stats["schemas enum" if "enum" in schema else "schemas object"] += 1
        for suffix in ("CreateRequest", "UpdateRequest", "PaginatedResponseWrapper", "Items"):
            if name.endswith(suffix):
                stats["schemas *" + suffix] += 1
                break
        else:
            if name.endswith("ResponseWrapper"):
                stats["schemas *ResponseWrapper"] += 1
        if "enum" in schema:
            stats["enum values"] += len(schema["enum"])
        if "properties" in schema:
            property_counts.append(len(schema["properties"]))
        stats["schemas with required"] += bool(schema.get("required"))
        graph[name] = []
        for node in _walk(schema):
            if "$ref" in node:
                stats["$ref in components"] += 1
                graph[name].append(node["$ref"].rsplit("/", 1)[-1])
            for keyword in ("oneOf", "anyOf", "allOf", "discriminator", "additionalProperties", "const"):
                if keyword in node:
                    stats[keyword] += 1
            if isinstance(node.get("format"), str):
                stats["format " + node["format"]] += 1
            if isinstance(node.get("type"), list):
                stats["type array with null"] += "null" in node["type"]
            if node.get("oneOf") and {"type": "null"} in node["oneOf"]:
                stats["oneOf [$ref, null]"] += 1
    stats["$ref in total"] = sum(1 for node in _walk(document) if "$ref" in node)
    if property_counts:
        ordered = sorted(property_counts)
        stats["properties"] = sum(ordered)
        stats["properties per object (median)"] = ordered[len(ordered) // 2]
        stats["properties per object (max)"] = ordered[-1]
    stats["self-referencing schemas"] = sum(1 for n, refs in graph.items() if n in refs)
    components = _components(graph)
    stats["cycles of 2+ schemas"] = sum(1 for c in components if len(c) > 1)
    # Tarjan's algorithm finds components in reverse topological order, so every
    # component's successors are measured before it is.
    component_of = {name: i for i, c in enumerate(components) for name in c}
    chain: list[int] = []
    reach: list[set[int]] = []
    for i, component in enumerate(components):
        successors = {component_of[t] for n in component for t in graph[n] if t in component_of} - {i}
        chain.append(1 + max((chain[j] for j in successors), default=0))
        reach.append(set().union(*(reach[j] | {j} for j in successors)) if successors else set())
    if components:
        stats["longest $ref chain (schemas)"] = max(chain)
        stats["most schemas reachable from one"] = max(
            sum(len(components[j]) for j in reach[i]) + len(components[i]) - 1 for i in range(len(components)))
    stats["unresolved $ref"] = sum(1 for node in _walk(document) if "$ref" in node
                                   and node["$ref"].rsplit("/", 1)[-1] not in schemas)
    return dict(stats)


def _walk(node: Any) -> Iterable[dict[str, Any]]:
    stack = [node]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _components(graph: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components (Tarjan's, without recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result = []
    for root in graph:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            edges = [e for e in graph.get(node, []) if e in graph]
            if i < len(edges):
                work.append((node, i + 1))
                nxt = edges[i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                result.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return result


# ------------------------------------------------------------------ command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gen_openapi.py", description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=DEFAULT_OPERATIONS,
                        help=f"operations to generate (default {DEFAULT_OPERATIONS})")
    parser.add_argument("--schemas", type=int, default=DEFAULT_SCHEMAS,
                        help=f"component schemas to generate (default {DEFAULT_SCHEMAS})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here (default: stdout)")
    parser.add_argument("--measure", type=Path, nargs="+", metavar="FILE",
                        help="print feature counts of these OpenAPI JSON documents (and of the generated one "
                             "with --operations/--schemas/--seed) instead of generating")
    return parser


def run(argv: Sequence[str], stdout: TextIO, stderr: TextIO) -> int:
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage or the help
        return int(exc.code or 0)
    if args.measure:
        columns = {str(path): measure(json.loads(path.read_text())) for path in args.measure}
        columns["generated"] = measure(generate(args.operations, args.schemas, args.seed))
        keys = list(dict.fromkeys(k for column in columns.values() for k in column))
        width = max(len(k) for k in keys)
        print(f"{'':{width}}  " + "  ".join(f"{Path(n).stem[:14]:>14}" for n in columns), file=stdout)
        for key in keys:
            print(f"{key:{width}}  " + "  ".join(f"{column.get(key, 0):>14}" for column in columns.values()),
                  file=stdout)
        return 0
    try:
        text = dumps(generate(args.operations, args.schemas, args.seed))
    except ValueError as exc:
        print(f"gen_openapi.py: {exc}", file=stderr)
        return 2
    if args.out is None:
        stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
    return 0


def main() -> None:
    sys.exit(run(sys.argv[1:], sys.stdout, sys.stderr))


if __name__ == "__main__":
    main()
