//! The seeded history's orders and customers as typed values, serialized
//! straight into a listing page: a seeded record is generated each time it
//! is served, and building it as a `serde_json::Value` tree first (a map for
//! every object, a string for every key) was the larger part of a page's
//! cost to the sandbox.

use serde::{Serialize, Serializer};
use serde_json::Value;

/// Cents written the way WooCommerce writes money: "12.50".
#[derive(Clone, Copy)]
pub(super) struct Money(pub i64);

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, (self.0 % 100).abs())
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A time as WooCommerce's `*_gmt` fields write it: UTC without an offset.
#[derive(Clone, Copy)]
pub(super) struct Gmt(pub jiff::Timestamp);

impl std::fmt::Display for Gmt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.strftime("%Y-%m-%dT%H:%M:%S").fmt(f)
    }
}

impl Serialize for Gmt {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The sandbox shop's time zone, three hours behind UTC as in the official
/// example order: its local times differ from the `*_gmt` ones, so a reader
/// of the wrong field is caught.
const SITE_OFFSET_HOURS: i64 = -3;

/// A time as WooCommerce's site-local fields (`date_created`, ...) write it.
/// [`dated`] writes a changed order's pair of fields.
#[derive(Clone, Copy)]
struct Local(jiff::Timestamp);

impl std::fmt::Display for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        Gmt(self.0 + jiff::SignedDuration::from_hours(SITE_OFFSET_HOURS)).fmt(f)
    }
}

impl Serialize for Local {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// What an order links to in its `_links`.
#[derive(Clone, Copy)]
enum LinkTo {
    Order(u64),
    Orders,
    Customer(u64),
}

impl std::fmt::Display for LinkTo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkTo::Order(id) => write!(f, "{SHOP_API}/orders/{id}"),
            LinkTo::Orders => write!(f, "{SHOP_API}/orders"),
            LinkTo::Customer(id) => write!(f, "{SHOP_API}/customers/{id}"),
        }
    }
}

/// One link of `_links`, `{"href": …}`, its address written only when the
/// link is (a listing asking `_fields` leaves `_links` out).
#[derive(Serialize)]
struct Href {
    href: Shown<LinkTo>,
}

/// A link as `_links` lists it: `[{"href": …}]`.
fn link(to: LinkTo) -> [Href; 1] {
    [Href { href: Shown(to) }]
}

/// Where WooCommerce links an order to: itself, its collection and, when
/// it has one, its customer.
#[derive(Serialize)]
struct OrderLinks {
    #[serde(rename = "self")]
    itself: [Href; 1],
    collection: [Href; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    customer: Option<[Href; 1]>,
}

/// A text of the seeded order made from its number when it is written, not
/// when the order is made: a listing that leaves the field out never builds it.
#[derive(Clone, Copy)]
enum Made {
    Empty,
    BuyerIp(u64),
    TransactionId(u64),
    CartHash(u64),
}

impl std::fmt::Display for Made {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Made::Empty => Ok(()),
            Made::BuyerIp(n) => write!(f, "203.0.113.{}", n % 250 + 1),
            Made::TransactionId(n) => write!(f, "ch_3Pseeded{n:08}"),
            Made::CartHash(n) => {
                write!(f, "{:032x}", u128::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835))
            }
        }
    }
}

/// A `Display` written as a JSON string.
#[derive(Clone, Copy)]
struct Shown<T>(T);

impl<T: std::fmt::Display> Serialize for Shown<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

const SHOP_API: &str = "https://shop.example/wp-json/wc/v3";

/// Sets `field` (`date_modified`, ...) of a kept order and its `_gmt` twin
/// to `at`, each as WooCommerce writes it.
pub(super) fn dated(order: &mut Value, field: &str, at: jiff::Timestamp) {
    order[field] = serde_json::json!(Local(at));
    order[format!("{field}_gmt")] = serde_json::json!(Gmt(at));
}

/// `{}` (an address WooCommerce leaves empty).
#[derive(Serialize)]
struct EmptyObject {}

/// `[]` (a list the seeded orders never fill).
type EmptyList = [(); 0];

#[derive(Serialize)]
struct Billing {
    first_name: String,
    last_name: &'static str,
    company: &'static str,
    address_1: &'static str,
    address_2: &'static str,
    city: &'static str,
    state: &'static str,
    postcode: &'static str,
    country: &'static str,
    email: String,
    phone: &'static str,
}

impl Billing {
    /// The seeded billing address of customer `customer`.
    fn of(customer: u64, email: String, phone: &'static str) -> Self {
        Billing {
            first_name: format!("First{customer}"),
            last_name: "Shopper",
            company: "",
            address_1: "1 Main St",
            address_2: "",
            city: "Lisbon",
            state: "",
            postcode: "1000-001",
            country: "PT",
            email,
            phone,
        }
    }
}

#[derive(Serialize)]
struct Meta {
    id: u64,
    key: &'static str,
    value: String,
}

#[derive(Serialize)]
struct Line {
    id: u64,
    name: String,
    product_id: u64,
    variation_id: u64,
    quantity: u64,
    tax_class: &'static str,
    subtotal: Money,
    subtotal_tax: &'static str,
    total: Money,
    total_tax: &'static str,
    taxes: EmptyList,
    meta_data: EmptyList,
    sku: String,
    price: f64,
}

#[derive(Serialize)]
struct Coupon {
    id: u64,
    code: &'static str,
    discount: &'static str,
}

/// Order `n` of the seeded history, in the fields (and the order of fields)
/// of WooCommerce's REST API v3.
#[derive(Serialize)]
pub(super) struct SeededOrder {
    id: u64,
    parent_id: u64,
    number: String,
    order_key: String,
    created_via: &'static str,
    version: &'static str,
    status: &'static str,
    currency: &'static str,
    date_created: Local,
    date_created_gmt: Gmt,
    date_modified: Local,
    date_modified_gmt: Gmt,
    discount_total: &'static str,
    discount_tax: &'static str,
    shipping_total: &'static str,
    shipping_tax: &'static str,
    cart_tax: &'static str,
    total: Money,
    total_tax: &'static str,
    prices_include_tax: bool,
    customer_id: u64,
    customer_ip_address: Shown<Made>,
    customer_user_agent: &'static str,
    customer_note: &'static str,
    billing: Billing,
    shipping: EmptyObject,
    payment_method: &'static str,
    payment_method_title: &'static str,
    transaction_id: Shown<Made>,
    date_paid: Option<Local>,
    date_paid_gmt: Option<Gmt>,
    date_completed: Option<Local>,
    date_completed_gmt: Option<Gmt>,
    cart_hash: Shown<Made>,
    meta_data: Vec<Meta>,
    line_items: Vec<Line>,
    tax_lines: EmptyList,
    shipping_lines: EmptyList,
    fee_lines: EmptyList,
    coupon_lines: Vec<Coupon>,
    /// How the order lists its refunds (`{id, reason, total}`), oldest first.
    pub(super) refunds: Vec<Value>,
    _links: OrderLinks,
}

impl SeededOrder {
    /// Order `n`, created at `created`: deterministic. Every
    /// 3rd is an Oliver POS sale, every 10th a guest (every 30th a guest
    /// without an email), every 50th (+7) worth 0, every 25th cancelled,
    /// every 40th pending; every 7th has a coupon. No refunds.
    pub(super) fn new(n: u64, customers: u64, created: jiff::Timestamp) -> Self {
        let created = Gmt(created);
        let customer = n % customers.max(1) + 1;
        let guest = n.is_multiple_of(10);
        let pos = n.is_multiple_of(3);
        let lines = n % 3 + 1;
        let unit = if n % 50 == 7 { 0 } else { 1250 + (n % 7) as i64 * 100 };
        let line_items = (1..=lines)
            .map(|l| Line {
                id: n * 10 + l,
                name: format!("Product {}", (n + l) % 20),
                product_id: (n + l) % 20 + 1,
                variation_id: 0,
                quantity: 1,
                tax_class: "",
                subtotal: Money(unit),
                subtotal_tax: "0.00",
                total: Money(unit),
                total_tax: "0.00",
                taxes: [],
                meta_data: [],
                sku: format!("SKU-{}", (n + l) % 20),
                price: unit as f64 / 100.0,
            })
            .collect();
        let status = if n.is_multiple_of(25) {
            "cancelled"
        } else if n.is_multiple_of(40) {
            "pending"
        } else if n.is_multiple_of(4) {
            "processing"
        } else {
            "completed"
        };
        let meta_data = if pos {
            vec![
                Meta { id: n * 3, key: "_oliver_pos_receipt_id", value: format!("OL-{n}") },
                Meta { id: n * 3 + 1, key: "location_id", value: format!("{}", n % 3 + 1) },
                Meta { id: n * 3 + 2, key: "register_id", value: format!("{}", n % 2 + 1) },
            ]
        } else {
            Vec::new()
        };
        let paid = (status != "pending").then_some(created.0);
        let completed = (status == "completed").then_some(created.0);
        let customer_id = if guest { 0 } else { customer };
        let made = |text: fn(u64) -> Made, when: bool| Shown(if when { text(n) } else { Made::Empty });
        let email = match (guest, n.is_multiple_of(30)) {
            (true, true) => String::new(),
            (true, false) => format!("guest{n}@example.com"),
            (false, _) => format!("customer{customer}@example.com"),
        };
        SeededOrder {
            id: n,
            parent_id: 0,
            number: n.to_string(),
            order_key: format!("wc_order_{n}"),
            created_via: if pos { "" } else { "checkout" },
            version: "9.0.0",
            status,
            currency: "USD",
            date_created: Local(created.0),
            date_created_gmt: created,
            date_modified: Local(created.0),
            date_modified_gmt: created,
            discount_total: "0.00",
            discount_tax: "0.00",
            shipping_total: "0.00",
            shipping_tax: "0.00",
            cart_tax: "0.00",
            total: Money(unit * lines as i64),
            total_tax: "0.00",
            prices_include_tax: false,
            customer_id,
            // Oliver POS records no browser; an online checkout does.
            customer_ip_address: made(Made::BuyerIp, !pos),
            customer_user_agent: if pos {
                ""
            } else {
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
            },
            customer_note: "",
            billing: Billing::of(customer, email, "+351210000000"),
            shipping: EmptyObject {},
            payment_method: if pos { "cash (POS)" } else { "stripe" },
            payment_method_title: if pos { "cash" } else { "Credit card" },
            transaction_id: made(Made::TransactionId, !pos && paid.is_some()),
            date_paid: paid.map(Local),
            date_paid_gmt: paid.map(Gmt),
            date_completed: completed.map(Local),
            date_completed_gmt: completed.map(Gmt),
            cart_hash: made(Made::CartHash, !pos),
            meta_data,
            line_items,
            tax_lines: [],
            shipping_lines: [],
            fee_lines: [],
            coupon_lines: if n.is_multiple_of(7) {
                vec![Coupon { id: n, code: "WELCOME10", discount: "1.00" }]
            } else {
                Vec::new()
            },
            refunds: Vec::new(),
            _links: OrderLinks {
                itself: link(LinkTo::Order(n)),
                collection: link(LinkTo::Orders),
                customer: (customer_id != 0).then(|| link(LinkTo::Customer(customer_id))),
            },
        }
    }

    /// The first line's total (what the seeded refunds give back).
    pub(super) fn first_line_total(&self) -> Money {
        self.line_items.first().map_or(Money(0), |line| line.total)
    }

    pub(super) fn created(&self) -> Gmt {
        self.date_created_gmt
    }
}

/// Customer `n` of the seeded history, in the fields of WooCommerce's REST
/// API v3: every 17th without an email of its own (its billing address
/// still has one).
#[derive(Serialize)]
pub(super) struct SeededCustomer {
    id: u64,
    date_created_gmt: Gmt,
    date_modified_gmt: Gmt,
    email: String,
    first_name: String,
    last_name: &'static str,
    role: &'static str,
    username: String,
    billing: Billing,
    shipping: EmptyObject,
    is_paying_customer: bool,
    meta_data: EmptyList,
}

impl SeededCustomer {
    pub(super) fn new(n: u64, start: jiff::Timestamp) -> Self {
        let created =
            Gmt(start - jiff::SignedDuration::from_hours(24 * 400) + jiff::SignedDuration::from_mins(n as i64));
        SeededCustomer {
            id: n,
            date_created_gmt: created,
            date_modified_gmt: created,
            email: if n.is_multiple_of(17) { String::new() } else { format!("customer{n}@example.com") },
            first_name: format!("First{n}"),
            last_name: "Shopper",
            role: "customer",
            username: format!("user{n}"),
            billing: Billing::of(n, format!("customer{n}@example.com"), ""),
            shipping: EmptyObject {},
            is_paying_customer: true,
            meta_data: [],
        }
    }
}
