//! `feastfast serve <service>`: one service, configured from the
//! environment. This is every service's `main`.

use clap::ValueEnum;
use platform::Env;
use platform::telemetry;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ServiceName {
    Gateway,
    Users,
    Restaurants,
    Orders,
    Payments,
    Delivery,
}

impl ServiceName {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ServiceName::Gateway => "gateway",
            ServiceName::Users => "users",
            ServiceName::Restaurants => "restaurants",
            ServiceName::Orders => "orders",
            ServiceName::Payments => "payments",
            ServiceName::Delivery => "delivery",
        }
    }
}

pub(crate) async fn run(service: ServiceName) -> anyhow::Result<()> {
    // Before anything can reach a failpoint (migrations, the relay).
    platform::failpoint::init(service.as_str())?;
    let env = Env::from_process();
    let server = match service {
        ServiceName::Users => {
            let config = users::Config::from_env(env)?;
            telemetry::init(config.service.log_format);
            users::build(config).await?
        }
        ServiceName::Restaurants => {
            let config = restaurants::Config::from_env(env)?;
            telemetry::init(config.service.log_format);
            restaurants::build(config).await?
        }
        ServiceName::Orders => {
            let config = orders::Config::from_env(env)?;
            telemetry::init(config.service.log_format);
            orders::build(config).await?
        }
        ServiceName::Payments => {
            let config = payments::Config::from_env(env)?;
            telemetry::init(config.service.log_format);
            payments::build(config).await?
        }
        ServiceName::Delivery => {
            let config = delivery::Config::from_env(env)?;
            telemetry::init(config.service.log_format);
            delivery::build(config).await?
        }
        ServiceName::Gateway => {
            let config = gateway::Config::from_env(env)?;
            telemetry::init(config.log_format);
            gateway::build(config).await?
        }
    };
    server.run_until_stopped().await?;
    Ok(())
}
