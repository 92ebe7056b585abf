//! Phone numbers in E-goi's `CC-digits` form (`351-912345678`, the schema's
//! `^(\d){1,3}-(\d){4,20}$`): an international number split after its
//! calling code, a national one prefixed with its country's code. A number
//! that cannot be made valid is left out rather than refused by E-goi.

/// ISO 3166-1 alpha-2 → calling code, for the countries stores sell in most.
const CALLING_CODES: &[(&str, &str)] = &[
    ("US", "1"),
    ("CA", "1"),
    ("PR", "1"),
    ("RU", "7"),
    ("KZ", "7"),
    ("EG", "20"),
    ("ZA", "27"),
    ("GR", "30"),
    ("NL", "31"),
    ("BE", "32"),
    ("FR", "33"),
    ("ES", "34"),
    ("HU", "36"),
    ("IT", "39"),
    ("RO", "40"),
    ("CH", "41"),
    ("AT", "43"),
    ("GB", "44"),
    ("DK", "45"),
    ("SE", "46"),
    ("NO", "47"),
    ("PL", "48"),
    ("DE", "49"),
    ("PE", "51"),
    ("MX", "52"),
    ("CU", "53"),
    ("AR", "54"),
    ("BR", "55"),
    ("CL", "56"),
    ("CO", "57"),
    ("VE", "58"),
    ("MY", "60"),
    ("AU", "61"),
    ("ID", "62"),
    ("PH", "63"),
    ("NZ", "64"),
    ("SG", "65"),
    ("TH", "66"),
    ("JP", "81"),
    ("KR", "82"),
    ("VN", "84"),
    ("CN", "86"),
    ("TR", "90"),
    ("IN", "91"),
    ("PK", "92"),
    ("MA", "212"),
    ("DZ", "213"),
    ("TN", "216"),
    ("SN", "221"),
    ("CV", "238"),
    ("GW", "245"),
    ("ST", "239"),
    ("AO", "244"),
    ("MZ", "258"),
    ("NG", "234"),
    ("KE", "254"),
    ("GI", "350"),
    ("PT", "351"),
    ("LU", "352"),
    ("IE", "353"),
    ("IS", "354"),
    ("AL", "355"),
    ("MT", "356"),
    ("CY", "357"),
    ("FI", "358"),
    ("BG", "359"),
    ("LT", "370"),
    ("LV", "371"),
    ("EE", "372"),
    ("MD", "373"),
    ("UA", "380"),
    ("RS", "381"),
    ("HR", "385"),
    ("SI", "386"),
    ("BA", "387"),
    ("MK", "389"),
    ("CZ", "420"),
    ("SK", "421"),
    ("LI", "423"),
    ("AD", "376"),
    ("MC", "377"),
    ("SM", "378"),
    ("UY", "598"),
    ("PY", "595"),
    ("BO", "591"),
    ("EC", "593"),
    ("HK", "852"),
    ("TW", "886"),
    ("AE", "971"),
    ("IL", "972"),
    ("SA", "966"),
    ("QA", "974"),
    ("TL", "670"),
    ("MO", "853"),
];

/// Countries whose national numbers keep their leading zero after the code.
const KEEPS_LEADING_ZERO: &[&str] = &["IT", "SM", "VA"];

fn calling_code(country: &str) -> Option<&'static str> {
    let country = country.trim().to_ascii_uppercase();
    CALLING_CODES.iter().find(|(iso, _)| *iso == country).map(|(_, code)| *code)
}

fn valid(code: &str, national: &str) -> Option<String> {
    let national_ok = (4..=20).contains(&national.len()) && national.bytes().all(|b| b.is_ascii_digit());
    let code_ok = (1..=3).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_digit());
    (national_ok && code_ok).then(|| format!("{code}-{national}"))
}

/// `phone` as E-goi's `CC-digits`, using the buyer's `country` for a
/// national number; `None` when it cannot be made valid.
pub fn cellphone(phone: &str, country: Option<&str>) -> Option<String> {
    let phone = phone.trim();
    if let Some((code, national)) = phone.split_once('-')
        && let Some(formatted) = valid(code, national)
        && !phone.starts_with(['+', '0'])
    {
        return Some(formatted);
    }
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    let international = phone.starts_with('+') || digits.starts_with("00");
    let country_code = country.and_then(calling_code);
    if international {
        let digits = if phone.starts_with('+') { digits.as_str() } else { &digits[2..] };
        // The buyer's own country first, then the longest known code.
        let code = country_code.filter(|code| digits.starts_with(code)).or_else(|| {
            (1..=3).rev().find_map(|len| {
                let prefix = digits.get(..len)?;
                CALLING_CODES.iter().find(|(_, code)| *code == prefix).map(|(_, code)| *code)
            })
        })?;
        return valid(code, &digits[code.len()..]);
    }
    let code = country_code?;
    let keeps_zero = country.is_some_and(|c| KEEPS_LEADING_ZERO.contains(&c.trim().to_ascii_uppercase().as_str()));
    let national = if keeps_zero { digits.as_str() } else { digits.trim_start_matches('0') };
    valid(code, national)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn international_national_and_already_formatted_numbers() {
        assert_eq!(cellphone("+351 912 345 678", None).as_deref(), Some("351-912345678"));
        assert_eq!(cellphone("00351912345678", Some("PT")).as_deref(), Some("351-912345678"));
        assert_eq!(cellphone("912 345 678", Some("pt")).as_deref(), Some("351-912345678"));
        assert_eq!(cellphone("(555) 010-2030", Some("US")).as_deref(), Some("1-5550102030"));
        assert_eq!(cellphone("020 7946 0018", Some("GB")).as_deref(), Some("44-2079460018"), "trunk 0 dropped");
        assert_eq!(cellphone("06 1234 5678", Some("IT")).as_deref(), Some("39-0612345678"), "Italy keeps its 0");
        assert_eq!(cellphone("351-912345678", None).as_deref(), Some("351-912345678"));
        assert_eq!(cellphone("+44 20 7946 0018", Some("PT")).as_deref(), Some("44-2079460018"), "the + wins");
    }

    #[test]
    fn what_cannot_be_made_valid_is_left_out() {
        assert_eq!(cellphone("912 345 678", None), None, "a national number without a country");
        assert_eq!(cellphone("123", Some("PT")), None, "too short");
        assert_eq!(cellphone("call me", Some("PT")), None);
        assert_eq!(cellphone("+999 1234 5678", None), None, "no such calling code");
        assert_eq!(cellphone(&format!("+351{}", "9".repeat(21)), None), None, "too long");
    }
}
