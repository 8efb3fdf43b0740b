//! When a schedule is open: weekly hours, a holiday calendar, 7×24.

use chrono::{Datelike, Duration, NaiveDateTime, Timelike};

use super::model::{Calendar, Schedule};

impl Schedule {
    /// Whether the schedule is open at local time `at`.
    ///
    /// An interval belongs to the day it starts on: one that runs past midnight is open in the
    /// small hours of the next day only when its start day was open.
    pub fn is_open(&self, calendars: &[Calendar], at: NaiveDateTime) -> bool {
        if self.always {
            return true;
        }
        let calendar = self.calendar.and_then(|id| calendars.get(id.0 as usize));
        let minute = (at.hour() * 60 + at.minute()) as u16;
        let today = at.date();
        let yesterday = today - Duration::days(1);
        self.hours.iter().any(|interval| {
            let past_midnight = interval.end_min <= interval.start_min;
            let opens_today = weekday_of(calendar, today).is_some_and(|day| interval.days[day])
                && minute >= interval.start_min
                && (past_midnight || minute < interval.end_min);
            let carried_over = past_midnight
                && minute < interval.end_min
                && weekday_of(calendar, yesterday).is_some_and(|day| interval.days[day]);
            opens_today || carried_over
        })
    }
}

/// The weekday (Monday = 0) whose hours apply on `date`: none on a holiday, Monday's on a
/// make-up workday.
fn weekday_of(calendar: Option<&Calendar>, date: chrono::NaiveDate) -> Option<usize> {
    match calendar {
        Some(c) if c.holidays.contains(&date) => None,
        Some(c) if c.workdays.contains(&date) => Some(0),
        _ => Some(date.weekday().num_days_from_monday() as usize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialplan::model::{CalendarId, Interval};
    use chrono::NaiveDate;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").expect("test time")
    }

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("test date")
    }

    fn weekdays(start_min: u16, end_min: u16) -> Interval {
        Interval {
            days: [true, true, true, true, true, false, false],
            start_min,
            end_min,
        }
    }

    fn national_day() -> Vec<Calendar> {
        vec![Calendar {
            name: "cn".into(),
            holidays: (1..=7).map(|d| date(&format!("2026-10-0{d}"))).collect(),
            workdays: [date("2026-10-10")].into_iter().collect(),
        }]
    }

    #[test]
    fn weekday_hours_open_and_close_on_the_minute() {
        let office = Schedule {
            name: "office".into(),
            always: false,
            hours: vec![weekdays(8 * 60 + 30, 12 * 60)],
            calendar: None,
        };
        // 2026-10-12 is a Monday.
        assert!(!office.is_open(&[], at("2026-10-12 08:29")));
        assert!(office.is_open(&[], at("2026-10-12 08:30")));
        assert!(office.is_open(&[], at("2026-10-12 11:59")));
        assert!(!office.is_open(&[], at("2026-10-12 12:00")));
        assert!(!office.is_open(&[], at("2026-10-17 09:00")), "Saturday");
    }

    #[test]
    fn holidays_close_and_make_up_workdays_open() {
        let office = Schedule {
            name: "office".into(),
            always: false,
            hours: vec![weekdays(9 * 60, 17 * 60)],
            calendar: Some(CalendarId(0)),
        };
        let calendars = national_day();
        assert!(
            !office.is_open(&calendars, at("2026-10-01 10:00")),
            "holiday"
        );
        assert!(
            !office.is_open(&calendars, at("2026-10-07 10:00")),
            "last day"
        );
        assert!(office.is_open(&calendars, at("2026-10-08 10:00")), "back");
        assert!(
            office.is_open(&calendars, at("2026-10-10 10:00")),
            "a Saturday worked"
        );
        assert!(!office.is_open(&[], at("2026-10-10 10:00")), "no calendar");
    }

    #[test]
    fn night_hours_run_past_midnight_from_the_start_day() {
        let night = Schedule {
            name: "night".into(),
            always: false,
            hours: vec![weekdays(22 * 60, 6 * 60)],
            calendar: Some(CalendarId(0)),
        };
        let calendars = national_day();
        assert!(night.is_open(&calendars, at("2026-10-12 23:30")), "Monday");
        assert!(night.is_open(&calendars, at("2026-10-13 05:59")), "carried");
        assert!(!night.is_open(&calendars, at("2026-10-13 06:00")));
        assert!(!night.is_open(&calendars, at("2026-10-12 21:59")));
        // Friday night runs into Saturday; Saturday night does not start.
        assert!(night.is_open(&calendars, at("2026-10-17 03:00")));
        assert!(!night.is_open(&calendars, at("2026-10-18 03:00")));
        // 30 September (a Wednesday) is worked: its night runs into the holiday;
        // the night of 1 October (a holiday) does not open at all.
        assert!(night.is_open(&calendars, at("2026-10-01 01:00")));
        assert!(!night.is_open(&calendars, at("2026-10-01 23:00")));
        assert!(!night.is_open(&calendars, at("2026-10-02 01:00")));
    }

    #[test]
    fn always_is_always_open() {
        let always = Schedule {
            name: "always".into(),
            always: true,
            hours: Vec::new(),
            calendar: Some(CalendarId(0)),
        };
        assert!(always.is_open(&national_day(), at("2026-10-01 03:00")));
    }
}
