use std::sync::Arc;

use sluice_core::{
    Column, ColumnType, Event, Op, Position, RowChange, TableId, TableSchema, Value,
};

use super::*;

fn schema(key: Vec<usize>) -> Arc<TableSchema> {
    let col = |name: &str| Column {
        name: name.into(),
        ty: ColumnType::Integer {
            bytes: 4,
            unsigned: false,
        },
        sql_type: "int".into(),
        nullable: false,
    };
    Arc::new(TableSchema {
        id: TableId::new("shop", "orders"),
        columns: vec![col("id"), col("customer"), col("qty")],
        primary_key: key,
    })
}

fn update(table: Arc<TableSchema>, before: [i64; 3], after: [i64; 3]) -> RowChange {
    RowChange {
        op: Op::Update,
        table,
        before: Some(before.iter().map(|v| Value::Int(*v)).collect()),
        after: Some(after.iter().map(|v| Value::Int(*v)).collect()),
        ts_ms: 0,
        txn: String::new(),
        seq: 0,
        pos: Position::new("binlog", "b.000001", 4),
    }
}

fn routing(mode: PartitionMode) -> Routing {
    Routing {
        topics: TopicMap::Template("{db}.{table}".into()),
        heartbeat_topic: None,
        mode,
        sharding: HashMap::new(),
    }
}

#[test]
fn an_update_moves_its_key_only_when_the_key_or_the_sharding_value_changes() {
    let r = routing(PartitionMode::Hash);
    let t = schema(vec![0]);
    assert!(!r
        .moves_key(&update(t.clone(), [1, 7, 1], [1, 8, 2]))
        .expect("ok"));
    assert!(r
        .moves_key(&update(t.clone(), [1, 7, 1], [2, 7, 1]))
        .expect("ok"));
    let mut by_customer = routing(PartitionMode::Hash);
    by_customer
        .sharding
        .insert(TableId::new("shop", "orders"), vec!["customer".into()]);
    assert!(by_customer
        .moves_key(&update(t.clone(), [1, 7, 1], [1, 8, 1]))
        .expect("ok"));
    assert!(!by_customer
        .moves_key(&update(t.clone(), [1, 7, 1], [1, 7, 5]))
        .expect("ok"));
    // In `one` and `table` mode the sharding columns pick no partition.
    let mut one = by_customer.clone();
    one.mode = PartitionMode::One;
    assert!(!one.moves_key(&update(t, [1, 7, 1], [1, 8, 1])).expect("ok"));
}

#[test]
fn a_table_without_a_primary_key_is_keyed_and_partitioned_by_its_objects_keys() {
    // objects.keys: [id] for a table without a primary key. Routing puts the key in the
    // schema, so an update of another column keeps its key and its partition.
    let router = sluice_route::Router {
        include: vec![sluice_route::Pattern::parse("shop.*").expect("pattern")],
        keys: [(TableId::new("shop", "orders"), vec!["id".to_string()])].into(),
        ops: vec![Op::Insert, Op::Update, Op::Delete],
        ..Default::default()
    };
    let r = routing(PartitionMode::Hash);
    let keyless = update(schema(Vec::new()), [1, 7, 1], [1, 8, 2]);
    // Unrouted (no key known), every column is the key: the update would move.
    assert!(r.moves_key(&keyless).expect("ok"));
    let Some(Event::Row(routed)) = router.route(Event::Row(keyless)).expect("routes") else {
        panic!("the row is selected");
    };
    assert_eq!(routed.table.primary_key, vec![0]);
    assert!(!r.moves_key(&routed).expect("ok"));
    let e = Event::Row(routed);
    assert_eq!(key_of(&e), b"1".to_vec());
    assert_eq!(
        r.partition(&e, &key_of(&e), 12).expect("ok"),
        pick(b"1", 12)
    );
}

#[test]
fn partitions_follow_the_mode() {
    let t = schema(vec![0]);
    let e = Event::Row(update(t, [5, 7, 1], [5, 7, 2]));
    let key = key_of(&e);
    assert_eq!(key, b"5".to_vec());
    assert_eq!(
        routing(PartitionMode::One)
            .partition(&e, &key, 8)
            .expect("ok"),
        0
    );
    assert_eq!(
        routing(PartitionMode::Table)
            .partition(&e, &key, 8)
            .expect("ok"),
        pick(b"shop.orders", 8)
    );
    assert_eq!(
        routing(PartitionMode::Hash)
            .partition(&e, &key, 8)
            .expect("ok"),
        pick(b"5", 8)
    );
    let mut sharded = routing(PartitionMode::Hash);
    sharded
        .sharding
        .insert(TableId::new("shop", "orders"), vec!["customer".into()]);
    assert_eq!(sharded.partition(&e, &key, 8).expect("ok"), pick(b"7", 8));
    sharded
        .sharding
        .insert(TableId::new("shop", "orders"), vec!["gone".into()]);
    let err = sharded.partition(&e, &key, 8).expect_err("no such column");
    assert!(
        err.to_string()
            .contains("sharding column gone of `shop`.`orders`"),
        "{err}"
    );
}

#[test]
fn topics_are_mapped_by_template_single_topic_or_explicit_map() {
    let t = TableId::new("shop", "orders");
    assert_eq!(
        TopicMap::Template("{db}_{table}".into()).topic(&t),
        "shop_orders"
    );
    assert_eq!(TopicMap::Single("all".into()).topic(&t), "all");
    let explicit = TopicMap::Explicit(
        [("shop.orders".to_string(), "o".to_string())].into(),
        "x.{table}".into(),
    );
    assert_eq!(explicit.topic(&t), "o");
    assert_eq!(explicit.topic(&TableId::new("shop", "items")), "x.items");
}
