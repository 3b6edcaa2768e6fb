//! Fake values for Postman's `{{$random…}}` dynamic variables (`fake('randomEmail')` in a
//! template): plausible, random, never real data.

use crate::template::random_u64;

const FIRST: [&str; 16] = [
    "Ada",
    "Alan",
    "Grace",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "John",
    "Margaret",
    "Ken",
    "Radia",
    "Niklaus",
    "Katherine",
    "Tim",
    "Hedy",
    "Linus",
];
const LAST: [&str; 16] = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "Backus",
    "Hamilton",
    "Thompson",
    "Perlman",
    "Wirth",
    "Johnson",
    "Berners-Lee",
    "Lamarr",
    "Torvalds",
];
const WORDS: [&str; 16] = [
    "alpha", "bridge", "copper", "delta", "ember", "forest", "granite", "harbor", "island",
    "juniper", "kettle", "lantern", "meadow", "nectar", "orbit", "pepper",
];
const CITIES: [&str; 8] = [
    "Lisbon", "Osaka", "Toronto", "Nairobi", "Oslo", "Lima", "Perth", "Tallinn",
];
const COUNTRIES: [&str; 8] = [
    "Portugal",
    "Japan",
    "Canada",
    "Kenya",
    "Norway",
    "Peru",
    "Australia",
    "Estonia",
];
const COLORS: [&str; 8] = [
    "red", "green", "blue", "yellow", "purple", "orange", "teal", "maroon",
];
const COMPANIES: [&str; 8] = [
    "Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne",
];
const JOBS: [&str; 8] = [
    "Engineer",
    "Designer",
    "Analyst",
    "Manager",
    "Consultant",
    "Architect",
    "Director",
    "Developer",
];

/// The kinds `fake()` knows (Postman's names without the `$`).
pub const KINDS: [&str; 30] = [
    "randomUUID",
    "randomAlphaNumeric",
    "randomBoolean",
    "randomInt",
    "randomFirstName",
    "randomLastName",
    "randomFullName",
    "randomUserName",
    "randomEmail",
    "randomExampleEmail",
    "randomPassword",
    "randomWord",
    "randomWords",
    "randomLoremWord",
    "randomLoremSentence",
    "randomCity",
    "randomCountry",
    "randomColor",
    "randomCompanyName",
    "randomJobTitle",
    "randomPhoneNumber",
    "randomBankAccount",
    "randomPrice",
    "randomIP",
    "randomUrl",
    "randomDomainName",
    "randomDateFuture",
    "randomDatePast",
    "randomDateRecent",
    "randomHexColor",
];

fn pick<'a>(list: &[&'a str]) -> &'a str {
    list[(random_u64() % list.len() as u64) as usize]
}

fn digits(n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + (random_u64() % 10) as u8))
        .collect()
}

fn date(offset_days: i64) -> String {
    crate::util::rfc3339(crate::util::unix_now() + offset_days * 86_400)
}

/// A fake value of a kind, or `None` for an unknown kind.
pub fn value(kind: &str) -> Option<String> {
    let kind = kind.strip_prefix('$').unwrap_or(kind);
    let first = || pick(&FIRST).to_string();
    let last = || pick(&LAST).to_string();
    Some(match kind {
        "randomUUID" | "guid" => uuid::Uuid::new_v4().to_string(),
        "randomAlphaNumeric" => crate::template::random_token(1).to_ascii_lowercase(),
        "randomBoolean" => random_u64().is_multiple_of(2).to_string(),
        "randomInt" => (random_u64() % 1001).to_string(),
        "randomFirstName" => first(),
        "randomLastName" => last(),
        "randomFullName" => format!("{} {}", first(), last()),
        "randomUserName" => format!("{}.{}{}", first(), last(), digits(2)).to_lowercase(),
        "randomEmail" | "randomExampleEmail" => {
            format!("{}.{}{}@example.com", first(), last(), digits(3)).to_lowercase()
        }
        "randomPassword" => crate::template::random_token(15),
        "randomWord" | "randomLoremWord" => pick(&WORDS).to_string(),
        "randomWords" => format!("{} {} {}", pick(&WORDS), pick(&WORDS), pick(&WORDS)),
        "randomLoremSentence" => {
            let mut s = format!(
                "{} {} {} {}.",
                pick(&WORDS),
                pick(&WORDS),
                pick(&WORDS),
                pick(&WORDS)
            );
            s[..1].make_ascii_uppercase();
            s
        }
        "randomCity" => pick(&CITIES).to_string(),
        "randomCountry" => pick(&COUNTRIES).to_string(),
        "randomColor" => pick(&COLORS).to_string(),
        "randomCompanyName" => format!("{} {}", pick(&COMPANIES), pick(&["Inc", "LLC", "Group"])),
        "randomJobTitle" => pick(&JOBS).to_string(),
        "randomPhoneNumber" => format!("{}-{}-{}", digits(3), digits(3), digits(4)),
        "randomBankAccount" => digits(8),
        "randomPrice" => format!("{}.{}", random_u64() % 1000, digits(2)),
        "randomIP" => format!(
            "{}.{}.{}.{}",
            random_u64() % 256,
            random_u64() % 256,
            random_u64() % 256,
            random_u64() % 256
        ),
        "randomUrl" => format!("https://{}.example.com", pick(&WORDS)),
        "randomDomainName" => format!("{}.example.com", pick(&WORDS)),
        "randomDateFuture" => date(1 + (random_u64() % 365) as i64),
        "randomDatePast" => date(-1 - (random_u64() % 365) as i64),
        "randomDateRecent" => date(-((random_u64() % 3) as i64)),
        "randomHexColor" => format!("#{:06x}", random_u64() % 0x100_0000),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_kind_gives_a_value() {
        for k in super::KINDS {
            assert!(super::value(k).is_some_and(|v| !v.is_empty()), "{k}");
        }
        assert!(super::value("randomNope").is_none());
    }
}
