/*
Speediful SLAM: remove SLAM from one user database.

  Who:    a member of sysadmin.
  Where:  USE YourDatabase; then run this script.
  Keeps:  by default the tables dbo.SLAM_Settings, SLAM_Connections and SLAM_Log (they hold
          the stored connections and their history); set @drop_tables = 1 below to drop them.
  Also:   set @unregister_xp = 1 to unregister master.dbo.xp_slam as well, which the script
          does only when no other database still has SLAM installed.

Removes: the SLAM procedures, the role SLAM_operator, the certificate SLAM_signing, the
worker's database user SLAM_worker, and in master the certificate and user
SLAM_xp_<database>. Safe to re-run.
Keeps:   the worker's login (made by sql/slam-master.sql): it belongs to the instance, and
other databases may still use SLAM. The script says how to drop it.
*/
SET NOCOUNT ON;
SET XACT_ABORT ON;
GO

-------------------------------------------------------------------------------------------
-- Settings
-------------------------------------------------------------------------------------------
DECLARE @drop_tables BIT = 0;     -- 1 also drops SLAM_Settings, SLAM_Connections and SLAM_Log
DECLARE @unregister_xp BIT = 0;   -- 1 also unregisters master.dbo.xp_slam (if no other database uses it)

-------------------------------------------------------------------------------------------
DECLARE @refusal NVARCHAR(2048) = NULL;
IF DB_NAME() IN (N'master', N'model', N'msdb', N'tempdb')
    SET @refusal = N'Run sql/slam-uninstall.sql in the user database SLAM is installed in, not in ' + DB_NAME() + N'.';
ELSE IF IS_SRVROLEMEMBER(N'sysadmin') <> 1
    SET @refusal = N'Run sql/slam-uninstall.sql as a member of sysadmin: it removes a user and a certificate in master.';
IF @refusal IS NOT NULL
BEGIN
    THROW 50606, @refusal, 1;
END;

DECLARE @database SYSNAME = DB_NAME();
DECLARE @master_principal SYSNAME = N'SLAM_xp_' + @database;
DECLARE @sql NVARCHAR(MAX) = N'';

-- Procedures (their signatures go with them).
SELECT @sql = @sql + N'DROP PROCEDURE dbo.' + QUOTENAME(p.name) + N';' + NCHAR(10)
FROM sys.procedures AS p
WHERE p.schema_id = SCHEMA_ID(N'dbo') AND p.name LIKE N'SLAM[_]%';
EXEC sys.sp_executesql @sql;

-- The certificate here, and its copy and user in master.
IF CERT_ID(N'SLAM_signing') IS NOT NULL
BEGIN
    DROP CERTIFICATE SLAM_signing;
END;
SET @sql = N'IF DATABASE_PRINCIPAL_ID(@p) IS NOT NULL EXEC (N''DROP USER '' + QUOTENAME(@p));
IF CERT_ID(@p) IS NOT NULL EXEC (N''DROP CERTIFICATE '' + QUOTENAME(@p));';
EXEC master.sys.sp_executesql @sql, N'@p SYSNAME', @p = @master_principal;

-- The role, once nobody is in it.
IF DATABASE_PRINCIPAL_ID(N'SLAM_operator') IS NOT NULL
BEGIN
    SET @sql = N'';
    SELECT @sql = @sql + N'ALTER ROLE SLAM_operator DROP MEMBER ' + QUOTENAME(USER_NAME(m.member_principal_id)) + N';' + NCHAR(10)
    FROM sys.database_role_members AS m
    WHERE m.role_principal_id = DATABASE_PRINCIPAL_ID(N'SLAM_operator');
    EXEC sys.sp_executesql @sql;
    DROP ROLE SLAM_operator;
END;

-- The worker's user. Its login stays: it is instance-wide, and other databases may use it.
IF DATABASE_PRINCIPAL_ID(N'SLAM_worker') IS NOT NULL
BEGIN
    DECLARE @worker_login SYSNAME = SUSER_SNAME((SELECT sid FROM sys.database_principals WHERE name = N'SLAM_worker'));
    DROP USER SLAM_worker;
    RAISERROR(N'Dropped the database user SLAM_worker.', 10, 1) WITH NOWAIT;
    IF @worker_login IS NOT NULL
    BEGIN
        DECLARE @drop_login NVARCHAR(400) = N'DROP LOGIN ' + QUOTENAME(@worker_login) + N';';
        RAISERROR(N'Kept the worker''s login %s: it belongs to the instance. Once no database uses SLAM, a sysadmin may drop it in master: %s', 10, 1, @worker_login, @drop_login) WITH NOWAIT;
    END;
END;

IF @drop_tables = 1
BEGIN
    DROP TABLE IF EXISTS dbo.SLAM_Log;
    DROP TABLE IF EXISTS dbo.SLAM_Connections;
    DROP TABLE IF EXISTS dbo.SLAM_Settings;
    RAISERROR(N'Dropped the tables SLAM_Settings, SLAM_Connections and SLAM_Log.', 10, 1) WITH NOWAIT;
END
ELSE
BEGIN
    RAISERROR(N'Kept the tables SLAM_Settings, SLAM_Connections and SLAM_Log (set @drop_tables = 1 to drop them).', 10, 1) WITH NOWAIT;
END;

IF @unregister_xp = 1
BEGIN
    IF EXISTS (SELECT 1 FROM master.sys.database_principals WHERE name LIKE N'SLAM[_]xp[_]%')
    BEGIN
        RAISERROR(N'Kept master.dbo.xp_slam: another database still has SLAM installed.', 10, 1) WITH NOWAIT;
    END
    ELSE IF EXISTS (SELECT 1 FROM master.sys.extended_procedures WHERE name = N'xp_slam')
    BEGIN
        DBCC xp_slam(FREE) WITH NO_INFOMSGS;
        EXEC master.sys.sp_dropextendedproc N'xp_slam';
        RAISERROR(N'Unregistered master.dbo.xp_slam.', 10, 1) WITH NOWAIT;
    END;
END;

RAISERROR(N'SLAM is removed from %s.', 10, 1, @database) WITH NOWAIT;
GO
