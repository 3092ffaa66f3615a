//! The geometry of dispatch: distances, the nearest courier, and ETAs.
//! Pure functions, no I/O and no clock.

use std::time::Duration;

use contracts::catalog::Location;

/// The mean radius of the Earth, in km.
const EARTH_RADIUS_KM: f64 = 6371.0;

/// The great-circle (haversine) distance between two valid locations, in km.
pub(crate) fn distance_km(a: Location, b: Location) -> f64 {
    let (lat1, lat2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = lat2 - lat1;
    let dlng = (b.lng - a.lng).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlng / 2.0).sin().powi(2);
    // Rounding can push `h` a hair above 1 for antipodal points.
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

/// A courier the dispatcher may assign.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Candidate {
    pub(crate) courier_id: String,
    pub(crate) location: Location,
}

/// `candidates` ordered nearest to `pickup` first; ties go to the lower id,
/// so the choice does not depend on the order the database returned them.
pub(crate) fn nearest_first(candidates: &[Candidate], pickup: Location) -> Vec<Candidate> {
    let mut ranked: Vec<(f64, &Candidate)> = candidates
        .iter()
        .map(|c| (distance_km(c.location, pickup), c))
        .collect();
    ranked.sort_by(|(da, a), (db, b)| {
        da.total_cmp(db)
            .then_with(|| a.courier_id.cmp(&b.courier_id))
    });
    ranked.into_iter().map(|(_, c)| c.clone()).collect()
}

/// How long a courier at `courier` takes to ride to `pickup` and then on to
/// `dropoff` at `speed_kmh`.
pub(crate) fn travel_time(
    courier: Location,
    pickup: Location,
    dropoff: Location,
    speed_kmh: f64,
) -> Duration {
    let km = distance_km(courier, pickup) + distance_km(pickup, dropoff);
    // Valid locations and a configured speed of 1..=200 km/h keep this
    // finite and non-negative; the fallback only guards the invariant.
    Duration::try_from_secs_f64(km / speed_kmh * 3600.0).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(lat: f64, lng: f64) -> Location {
        Location { lat, lng }
    }

    #[test]
    fn distances_are_great_circle_km() {
        // Berlin to Paris is about 878 km.
        let d = distance_km(at(52.5200, 13.4050), at(48.8566, 2.3522));
        assert!((d - 878.0).abs() < 5.0, "{d}");
        assert_eq!(distance_km(at(1.0, 2.0), at(1.0, 2.0)), 0.0);
        // One degree of latitude is about 111 km anywhere.
        let d = distance_km(at(10.0, 50.0), at(11.0, 50.0));
        assert!((d - 111.2).abs() < 0.5, "{d}");
        // Antipodes: half the circumference, not NaN.
        let d = distance_km(at(0.0, 0.0), at(0.0, 180.0));
        assert!(
            (d - std::f64::consts::PI * EARTH_RADIUS_KM).abs() < 1e-6,
            "{d}"
        );
    }

    #[test]
    fn the_nearest_courier_comes_first_and_ties_break_by_id() {
        let pickup = at(52.52, 13.40);
        let far = Candidate {
            courier_id: "a".to_owned(),
            location: at(52.60, 13.40),
        };
        let near = Candidate {
            courier_id: "b".to_owned(),
            location: at(52.521, 13.40),
        };
        let tie = Candidate {
            courier_id: "c".to_owned(),
            location: at(52.60, 13.40),
        };
        let ranked = nearest_first(&[tie.clone(), far.clone(), near.clone()], pickup);
        assert_eq!(ranked, [near, far, tie]);
        assert!(nearest_first(&[], pickup).is_empty());
    }

    #[test]
    fn travel_time_covers_both_legs_at_the_given_speed() {
        // 0.1 degree of latitude ≈ 11.12 km per leg: 22.24 km at 25 km/h.
        let t = travel_time(at(52.3, 13.4), at(52.4, 13.4), at(52.5, 13.4), 25.0);
        let expected = 2.0 * distance_km(at(52.3, 13.4), at(52.4, 13.4)) / 25.0 * 3600.0;
        assert!((t.as_secs_f64() - expected).abs() < 1e-6);
        assert!((t.as_secs_f64() / 60.0 - 53.4).abs() < 0.5, "{t:?}");
        let here = at(52.4, 13.4);
        assert_eq!(travel_time(here, here, here, 25.0), Duration::ZERO);
    }
}
